//go:build linux

package procmaps

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestRead: this test's own memory map holds its executable; a missing
// file is an error that keeps its cause.
func TestRead(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	files, err := Read("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range files {
		found = found || f.Path == exe
	}
	if !found {
		t.Errorf("%s not among the mapped files %+v", exe, files)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "maps")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}
