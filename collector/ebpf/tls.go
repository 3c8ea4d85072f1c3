//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/zerotrace/zerotrace/collector/probesite"
	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/collector/tlslib"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// tlsTracker attaches the OpenSSL plaintext uprobes (bpf/socket/openssl.h,
// docs/tls.md) once per file (device and inode) that carries OpenSSL: the
// libssl a process maps and an executable exporting SSL_write (node). A
// uprobe on a file fires in every process that maps it; the BPF side
// filters. Processes are looked at when their first event comes, when
// their bytes look like a TLS record while no library of theirs is known
// (a library loaded late: Python imports _ssl lazily), and at start.
type tlsTracker struct {
	queue    chan uint32
	attached map[exeID]error
	logged   map[string]bool      // deleted files logged
	looked   map[uint32]time.Time // processes looked at again on a TLS record

	mu                    sync.Mutex
	files, failed, probes uint64
	followed              map[uint32]bool
}

// tlsRelook bounds how often one process is looked at again.
const tlsRelook = time.Second

// TLSStats returns the files whose OpenSSL functions are attached, the files
// that could not be (no symbols, deleted, unreadable) and the uprobe links
// attached for TLS.
func (c *Capture) TLSStats() (files, failed, links uint64) {
	c.tls.mu.Lock()
	defer c.tls.mu.Unlock()
	return c.tls.files, c.tls.failed, c.tls.probes
}

// TLSFollowed reports whether a TLS library of process pid is attached.
func (c *Capture) TLSFollowed(pid uint32) bool {
	c.tls.mu.Lock()
	defer c.tls.mu.Unlock()
	return c.tls.followed[pid]
}

// startTLS fills the exclusion map and starts the tracker (Start).
func (c *Capture) startTLS() error {
	if c.opt.TLSDisabled {
		return nil
	}
	for _, name := range c.opt.TLSExclude {
		var k SocketTlsComm
		for i := 0; i < len(name) && i < len(k.Comm)-1; i++ {
			k.Comm[i] = int8(name[i])
		}
		if err := c.objs.TlsExclude.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("excluding %s from TLS: %w", name, err)
		}
	}
	c.tls.queue = make(chan uint32, 256)
	c.wg.Add(1)
	go c.tlsTrack()
	return nil
}

// tlsNewProcess queues pid's look for TLS libraries (never blocking the
// reader).
func (c *Capture) tlsNewProcess(pid uint32) {
	if c.tls.queue == nil {
		return
	}
	select {
	case c.tls.queue <- pid:
	default:
	}
}

// tlsRecord is told of a syscall's bytes (not a TLS call's): it reports
// whether they are ciphertext of a connection whose plaintext comes from a
// TLS library (they make no span: docs/tls.md; a Go Read's tells the
// session its plaintext was lost: docs/tls-go.md); bytes that look like a TLS
// record of another connection make its process looked at again (a library
// loaded late, or one not attached yet).
func (c *Capture) tlsRecord(e *Event, conn *session.Conn, now int64) bool {
	if conn.TLS() != 0 && (e.Dir == DirEgress || e.Dir == DirIngress) {
		if conn.TLS().Has(span.FlagTLSGo) && e.Dir == DirIngress && e.Len > 0 {
			// Go's crypto/tls reads only inside Read, whose syscalls send
			// nothing (bpf/socket/gotls.h): this Read began before its
			// probes were attached, its plaintext is lost.
			conn.Unread(session.Ingress, now, e.TCPSeq)
		}
		return true
	}
	if len(e.Data) >= 3 && e.Data[0] >= 0x14 && e.Data[0] <= 0x17 && e.Data[1] == 3 {
		c.tlsNewProcess(e.PID)
	}
	return false
}

// tlsTrack is the tracker's goroutine.
func (c *Capture) tlsTrack() {
	defer c.wg.Done()
	c.tls.attached = map[exeID]error{}
	c.tls.logged = map[string]bool{}
	c.tls.looked = map[uint32]time.Time{}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if pid, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && pid != uint64(os.Getpid()) {
				c.trackTLS(uint32(pid))
			}
		}
	}
	for {
		select {
		case <-c.done:
			return
		case pid := <-c.tls.queue:
			if now := time.Now(); now.Sub(c.tls.looked[pid]) >= tlsRelook {
				if len(c.tls.looked) > 65536 {
					c.tls.looked = map[uint32]time.Time{}
				}
				c.tls.looked[pid] = now
				c.trackTLS(pid)
			}
		}
	}
}

// trackTLS attaches the uprobes to pid's libssl files and to its
// executable when it exports OpenSSL.
func (c *Capture) trackTLS(pid uint32) {
	dir := filepath.Join("/proc", strconv.Itoa(int(pid)))
	f, err := os.Open(filepath.Join(dir, "maps"))
	if err != nil {
		return // gone
	}
	libs, err := tlslib.Libraries(f)
	f.Close()
	if err != nil {
		return
	}
	followed := false
	// The executable through /proc/<pid>/exe: a deleted or replaced one
	// (a memfd, an upgraded package) is read and attached as it runs.
	exe := filepath.Join(dir, "exe")
	if err, first := attachOnce(c.tls.attached, exe, c.attachOpenSSL); err == nil {
		followed = true
		c.tlsAttached(first, exePath(exe), pid)
	} else if first && !errors.Is(err, tlslib.ErrNoSymbols) {
		c.tlsFailed(exePath(exe), pid, err, true) // most executables carry no OpenSSL: not logged
	}
	for _, m := range libs {
		if m.Deleted {
			c.tlsFailed(m.Path, pid, errors.New("library deleted since it was mapped"), false)
			continue
		}
		err, first := attachOnce(c.tls.attached, filepath.Join(dir, "root", m.Path), c.attachOpenSSL)
		switch {
		case err == nil:
			followed = true
			c.tlsAttached(first, m.Path, pid)
		case first:
			c.tlsFailed(m.Path, pid, err, true)
		}
	}
	if followed {
		c.tls.mu.Lock()
		if c.tls.followed == nil || len(c.tls.followed) > 65536 {
			c.tls.followed = map[uint32]bool{}
		}
		c.tls.followed[pid] = true
		c.tls.mu.Unlock()
	}
}

func (c *Capture) tlsAttached(first bool, path string, pid uint32) {
	if !first {
		return
	}
	c.tls.mu.Lock()
	c.tls.files++
	c.tls.mu.Unlock()
	c.opt.Logger.Debug("TLS plaintext read", "file", path, "pid", pid)
}

// tlsFailed logs a file whose TLS calls cannot be read, once (attachOnce
// remembers it; a deleted file by its path: once), and counts it.
func (c *Capture) tlsFailed(path string, pid uint32, err error, once bool) {
	if !once {
		if c.tls.logged[path] {
			return
		}
		if len(c.tls.logged) > 4096 {
			c.tls.logged = map[string]bool{}
		}
		c.tls.logged[path] = true
	}
	c.tls.mu.Lock()
	c.tls.failed++
	c.tls.mu.Unlock()
	c.opt.Logger.Warn("TLS plaintext not read for this file; its processes keep their syscall spans (logged once per file)",
		"file", path, "pid", pid, "err", err)
}

// attachOpenSSL attaches the entry and return probes of SSL_write,
// SSL_read, SSL_write_ex and SSL_read_ex (osslPair) and the entry uprobe of
// SSL_set_fd (those it exports) to the file at path.
func (c *Capture) attachOpenSSL(path string) error {
	n := 0
	err := c.attachFound(path, "OpenSSL's functions", func(r io.ReaderAt) ([]uprobeAt, error) {
		o, err := tlslib.FindOpenSSL(r)
		if err != nil {
			return nil, err
		}
		p := c.objs.SocketPrograms
		probes := append(osslPair(p.OsslWrite, p.OsslRet, o.Write, o.WriteSites), osslPair(p.OsslRead, p.OsslRet, o.Read, o.ReadSites)...)
		if o.WriteEx != 0 {
			entry := p.OsslWriteEx
			if o.WholeWrites { // the count of a small write is its length (openssl.h ossl_write_exw)
				entry = p.OsslWriteExw
			}
			probes = append(probes, osslPair(entry, p.OsslRetEx, o.WriteEx, o.WriteExSites)...)
		}
		if o.ReadEx != 0 {
			probes = append(probes, osslPair(p.OsslReadEx, p.OsslRetEx, o.ReadEx, o.ReadExSites)...)
		}
		if o.SetFd != 0 {
			probes = append(probes, uprobeAt{p.OsslSetFd, false, o.SetFd, 0})
		}
		n = len(probes)
		return probes, nil
	})
	if err == nil {
		c.tls.mu.Lock()
		c.tls.probes += uint64(n)
		c.tls.mu.Unlock()
	}
	return err
}

// osslPair is the entry and return probes of an OpenSSL function at fn,
// placed and ordered by probesite.Sites.Probes: at its probe sites (two
// uprobes the kernel emulates, no single step; the return site's RAX is
// the return value, as a uretprobe's), else an entry uprobe and a
// uretprobe.
func osslPair(entry, ret *ebpf.Program, fn uint64, s probesite.Sites) []uprobeAt {
	var probes []uprobeAt
	for _, p := range s.Probes(fn) {
		prog := entry
		if p.Return {
			prog = ret
		}
		probes = append(probes, uprobeAt{prog, p.Uretprobe, p.At, 0})
	}
	return probes
}

// tlsFlag is the span flags of a library's plaintext (Event.TLS).
func tlsFlag(lib uint8) span.Flags {
	if lib == TLSGo {
		return span.FlagTLS | span.FlagTLSGo
	}
	return span.FlagTLS | span.FlagTLSOpenSSL
}
