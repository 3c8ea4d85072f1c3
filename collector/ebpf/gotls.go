//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/cilium/ebpf/link"

	"github.com/zerotrace/zerotrace/collector/gotls"
)

// goTLSTracker attaches the Go crypto/tls uprobes (bpf/socket/gotls.h) to
// each Go executable that links crypto/tls, once per file (device and
// inode): entry probes on (*tls.Conn).Write and Read, and a probe on each
// of their RET instructions. It runs on the Go tracker's goroutine
// (goroutines.go), for every Go process found (processes.go). A file it
// cannot read (unknown Go version or layout, damaged tables) is logged once
// and counted; its processes keep their syscall spans.
type goTLSTracker struct {
	attached map[exeID]error
	files    atomic.Uint64 // executables whose probes are attached
	failed   atomic.Uint64 // Go executables linking crypto/tls not attached
	on       bool          // the gotls_on map says so
}

// GoTLSStats returns the Go executables whose crypto/tls probes are
// attached and those that link crypto/tls but could not be attached
// (/metrics zerotrace_ebpf_gotls_files_total and _failed_total).
func (c *Capture) GoTLSStats() (attached, failed uint64) {
	return c.gotls.files.Load(), c.gotls.failed.Load()
}

// trackGoTLS attaches the probes to pid's executable unless done before.
func (c *Capture) trackGoTLS(pid uint32) {
	exe := filepath.Join("/proc", strconv.Itoa(int(pid)), "exe")
	// The file is held open while it is read and attached: a short-lived
	// process may exit meanwhile, and its /proc entry with it (a failure
	// attachOnce would keep for the file).
	f, err := os.Open(exe)
	if err != nil {
		return // the process is gone
	}
	defer f.Close()
	if c.gotls.attached == nil {
		c.gotls.attached = map[exeID]error{}
	}
	err, first := attachOnce(c.gotls.attached, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), c.attachGoTLS)
	switch {
	case !first:
	case err == nil:
		c.gotls.files.Add(1)
		c.opt.Logger.Debug("Go crypto/tls plaintext read", "exe", exePath(exe), "pid", pid)
	case errors.Is(err, gotls.ErrNoTLS) || errors.Is(err, gotls.ErrNotGo):
		// Nothing to read in this program.
	default:
		c.gotls.failed.Add(1)
		c.opt.Logger.Warn("Go crypto/tls plaintext not read in a program (logged once per file); its connections keep their syscall spans",
			"pid", pid, "exe", exePath(exe), "err", err)
	}
}

// attachGoTLS reads exe's offsets and attaches its probes (all or none).
func (c *Capture) attachGoTLS(exe string) error {
	info, err := gotls.Inspect(exe)
	if err != nil {
		return err
	}
	ex, err := link.OpenExecutable(exe)
	if err != nil {
		return fmt.Errorf("opening executable: %w", err)
	}
	l := info.Layout
	cookie := l.ConnData | l.ConnFD<<8 | l.FDSysfd<<16 | l.RawInput<<24 | l.Input<<40 // bpf/socket/gotls.h GOTLS_COOKIE_*
	var links []link.Link
	probes := []struct {
		sym string
		fn  gotls.Func
	}{{gotls.WriteSymbol, info.Write}, {gotls.ReadSymbol, info.Read}}
	for i, p := range probes {
		entry := c.objs.GotlsWrite
		if i == 1 {
			entry = c.objs.GotlsRead
		}
		offs := append([]uint64{p.fn.Entry}, p.fn.Returns...)
		for j, off := range offs {
			prog := c.objs.GotlsRet
			if j == 0 {
				prog = entry
			}
			lk, err := ex.Uprobe(p.sym, prog, &link.UprobeOptions{Address: off, Cookie: cookie})
			if err != nil {
				for _, l := range links {
					l.Close()
				}
				return fmt.Errorf("uprobe on %s at file offset %#x: %w", p.sym, off, err)
			}
			links = append(links, lk)
		}
	}
	c.addLinks(links...)
	if !c.gotls.on {
		if err := c.objs.GotlsOn.Put(uint32(0), uint32(1)); err != nil {
			return fmt.Errorf("enabling Go TLS calls: %w", err)
		}
		c.gotls.on = true
	}
	return nil
}
