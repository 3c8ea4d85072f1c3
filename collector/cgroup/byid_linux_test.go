//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestByID: a cgroup made here, with the kubelet's cgroupfs layout below a
// test directory, is found by its id (its directory's inode number, which
// is what BPF programs get), its path names the container, a second lookup
// comes from the cache, and a removed cgroup is not found.
func TestByID(t *testing.T) {
	testenv.RequireRoot(t)
	var r ByID
	r.once.Do(r.open)
	if r.err != nil {
		t.Fatal(r.err)
	}
	top := filepath.Join(r.mnt, fmt.Sprintf("zt-byid-%d", os.Getpid()))
	rel := "/kubepods/besteffort/pod" + uid1 + "/" + idA
	dir := filepath.Join(top, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for d := dir; d != r.mnt; d = filepath.Dir(d) {
			os.Remove(d)
		}
	}()
	id := inode(t, dir)
	for round := 0; round < 2; round++ {
		p, err := r.Path(id)
		if err != nil || p != filepath.Join("/", filepath.Base(top), rel) {
			t.Fatalf("round %d: cgroup %d: %q, %v; want %s", round, id, p, err, dir)
		}
		if c, err := ParsePath(p); err != nil || c.ID != idA || c.PodUID != uid1 {
			t.Fatalf("round %d: %q: %+v %v", round, p, c, err)
		}
	}
	if len(r.paths) != 1 {
		t.Errorf("%d paths cached, want 1", len(r.paths))
	}
	if p, err := r.Path(inode(t, r.mnt)); err != nil || p != "/" {
		t.Errorf("the root cgroup: %q, %v", p, err)
	}
	gone := filepath.Join(top, "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	gid := inode(t, gone)
	os.Remove(gone)
	if p, err := r.Path(gid); err == nil {
		t.Errorf("a removed cgroup found at %q", p)
	}
	if _, err := (&ByID{Mount: t.TempDir()}).Path(id); !errors.Is(err, ErrNoCgroup2) {
		t.Errorf("a directory that is no cgroup2 mount: %v", err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func BenchmarkByID(b *testing.B) {
	testenv.RequireRoot(b)
	var r ByID
	id := uint64(1)
	if _, err := r.Path(id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.mu.Lock()
		r.paths = nil // the uncached lookup
		r.mu.Unlock()
		if _, err := r.Path(id); err != nil {
			b.Fatal(err)
		}
	}
}
