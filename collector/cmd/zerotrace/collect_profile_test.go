//go:build linux

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestProfileFlags: the profile flags come off collect's arguments in both
// forms, the others stay in order, and the files written are profiles.
func TestProfileFlags(t *testing.T) {
	dir := t.TempDir()
	cpu, alloc := filepath.Join(dir, "c.prof"), filepath.Join(dir, "a.prof")
	rest, p, err := takeProfileFlags([]string{"--node", "n1", "--cpu-profile", cpu, "-alloc-profile=" + alloc, "--data-dir", "/d"})
	if err != nil || !reflect.DeepEqual(rest, []string{"--node", "n1", "--data-dir", "/d"}) || p.cpu != cpu || p.alloc != alloc {
		t.Fatalf("rest %q, %+v, %v", rest, p, err)
	}
	if _, _, err := takeProfileFlags([]string{"--cpu-profile"}); err == nil {
		t.Error("--cpu-profile without a file accepted")
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cpu, alloc} {
		b, err := os.ReadFile(f)
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof files are gzipped protobuf
			t.Errorf("%s: %d bytes, %v", f, len(b), err)
		}
	}
}
