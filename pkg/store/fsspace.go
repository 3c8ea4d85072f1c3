package store

import (
	"errors"
	"syscall"
)

// FSSpace is what the filesystem holding a directory says about its space.
type FSSpace struct {
	Size  int64 // bytes of the filesystem
	Avail int64 // bytes still free for an ordinary writer (root's reserve not counted)
	Block int64 // allocation unit: a file's last block is taken whole
}

// StatFS returns the space of the filesystem holding dir; ok is false on a
// platform that cannot tell (then only a disk budget limits the writer).
func StatFS(dir string) (s FSSpace, ok bool, err error) { return statFS(dir) }

// DefaultMinFree is the free space kept on a filesystem of size bytes when
// none is configured: 10% of it, and at least 1 GiB (at most a quarter of a
// small filesystem). The kubelet's default hard eviction threshold is
// nodefs.available<10%: the collector never takes the node below it.
func DefaultMinFree(size int64) int64 { return max(size/10, min(1<<30, size/4)) }

// DefaultDiskBudget is what a node directory may hold on a filesystem of
// size bytes when no budget is configured: a fifth of it.
func DefaultDiskBudget(size int64) int64 { return size / 5 }

// Writable checks that dir may be written: not on a read-only filesystem,
// and permitted to this process.
func Writable(dir string) error { return writable(dir) }

// IsNoSpace reports whether err says the filesystem (or a quota) is full.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
