package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestWriteCorpus regenerates the committed seed corpus of FuzzDecodeBatch
// from real batches: ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzDecodeBatch seeds")
	}
	good := encodedBatch(t, append([]span.Span{fullSpan(0)}, bookinfo(t, 1)...))
	seeds := map[string][]byte{
		"seed-bookinfo":     good,
		"seed-truncated":    good[:len(good)*2/3],
		"seed-flipped-body": flip(good, len(good)-100),
		"seed-schema-only":  append(append([]byte(nil), schemaMessage...), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
