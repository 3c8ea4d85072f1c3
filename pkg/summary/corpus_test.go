package summary

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteCorpus regenerates the committed seed corpus of FuzzParse:
// ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus ./pkg/summary/.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzParse")
	}
	good := Build(input(40, 5), 0).Marshal()
	flipped := append([]byte(nil), good...)
	flipped[headerLen+7] ^= 0xff // the first filter's bit count
	seeds := map[string][]byte{
		"seed-good":           good,
		"seed-truncated":      good[:len(good)/2],
		"seed-flipped-bits":   flipped,
		"seed-sets-only":      Build(Input{MinNs: 1, MaxNs: 2, Namespaces: []string{"a", "b"}, Workloads: []string{"w"}}, 0).Marshal(),
		"seed-empty-sections": Build(Input{}, 0).Marshal(),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
