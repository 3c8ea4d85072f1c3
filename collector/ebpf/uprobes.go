//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"syscall"

	"github.com/cilium/ebpf/link"
)

// Uprobe bookkeeping shared by the runtime trackers (goroutines.go,
// pyqueues.go, nodeturns.go): each executable or library is attached once,
// known by its device and inode, and the links live until Close.

type exeID struct{ dev, ino uint64 }

// attachOnce calls attach for the file at path unless the file (its device
// and inode) was attached, or failed to be, before; it returns the outcome
// and whether this call made it. A failure whose path is gone afterwards
// (the process ended while its /proc path was used) is not remembered.
func attachOnce(attached map[exeID]error, path string, attach func(string) error) (err error, first bool) {
	id, err := exeIDOf(path)
	if err != nil {
		return err, false
	}
	if err, seen := attached[id]; seen {
		return err, false
	}
	err = attach(path)
	if err != nil {
		if _, serr := os.Stat(path); serr != nil {
			// The process whose /proc path reached the file ended
			// meanwhile: not the file's fault, the next process tries again.
			return err, false
		}
	}
	attached[id] = err
	return err, true
}

// exeIDOf identifies the file at path.
func exeIDOf(path string) (exeID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return exeID{}, fmt.Errorf("reading %s: %w", path, err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return exeID{uint64(sys.Dev), sys.Ino}, nil
}

// exePath is the path /proc/<pid>/exe links to (the binary a user knows),
// or link itself when it cannot be read.
func exePath(link string) string {
	if p, err := os.Readlink(link); err == nil {
		return p
	}
	return link
}

// addLinks keeps uprobes attached after Start (closing them when the
// capture was closed meanwhile).
func (c *Capture) addLinks(ls ...link.Link) {
	c.linksMu.Lock()
	defer c.linksMu.Unlock()
	if c.linksClosed {
		for _, l := range ls {
			l.Close()
		}
		return
	}
	c.links = append(c.links, ls...)
}

// closeLinks detaches every program and uprobe; uprobes a tracker attaches
// from now on are closed at once.
func (c *Capture) closeLinks() {
	c.linksMu.Lock()
	defer c.linksMu.Unlock()
	for _, l := range c.links {
		l.Close()
	}
	c.links = nil
	c.linksClosed = true
}
