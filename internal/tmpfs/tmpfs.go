//go:build linux

// Package tmpfs gives tests a filesystem of their own to fill: a tmpfs of
// a chosen size (root) and a ballast file that takes its space.
package tmpfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// Mount mounts a tmpfs of size bytes on a new directory, unmounted at the
// test's cleanup.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// ReadOnly remounts the tmpfs at dir read-only.
func ReadOnly(t testing.TB, dir string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remounting read-only: %v %s", err, out)
	}
}

// Fill appends n bytes to the file path (not zeros), or, when n is -1, as
// many as the filesystem takes: then nothing is left free.
func Fill(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	for written := int64(0); n < 0 || written < n; {
		b := buf
		if n >= 0 && n-written < int64(len(b)) {
			b = b[:n-written]
		}
		k, err := f.Write(b)
		written += int64(k)
		if n < 0 && errors.Is(err, syscall.ENOSPC) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Free is what the filesystem holding dir has free.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Frsize
}
