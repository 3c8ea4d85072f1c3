//go:build linux

package ebpf

import (
	"encoding/binary"
	"sync"

	"github.com/zerotrace/zerotrace/collector/proc"
)

// A program's identity read at its exec. The session worker reads a
// process's name, command line and container from /proc when it handles the
// process's first event; a short-lived client (a curl in a script, a cron
// job) has often exited by then when the worker runs behind, and its spans
// kept only their thread's name: no command line, no container, so no pod
// or workload. The ring reader, which runs ahead of the worker, sees the
// exec's event (bpf/socket/procs.h, which carries the new program's thread
// name) and reads /proc at once; the worker takes what it read when it
// handles that event, in the ring's order, after the old program's last
// event, and keeps it for the program's first lookup, which uses it when
// /proc no longer tells the program (proc.Cache.Keep). What was read is
// kept only when the thread still had the exec's name once /proc was read:
// a second exec since then (a shell's `exec`) makes it another program's.

// execKey names one exec event: its process and its time.
type execKey struct {
	pid  uint32
	mono uint64
}

// execInfos holds what the reader read at exec events until the worker
// takes it.
type execInfos struct {
	mu sync.Mutex
	m  map[execKey]proc.Info
}

// execsLimit bounds the infos waiting for the worker (one per exec the
// ring holds; an event the worker never decodes leaves its info behind).
const execsLimit = 4096

// readExec reads /proc for the exec event in record b, when b is one.
func (c *Capture) readExec(b []byte) {
	if len(b) < EventHeaderSize || b[54] != DirProc {
		return
	}
	le := binary.LittleEndian
	if le.Uint32(b[36:]) != ProcExec {
		return
	}
	k := execKey{pid: le.Uint32(b[24:]), mono: le.Uint64(b[0:])}
	info, ok := c.procs.Read(k.pid, le.Uint32(b[28:]), string(commOf(b)))
	if !ok || info.Cmdline == "" {
		return // another program's by now, or already gone
	}
	x := &c.execs
	x.mu.Lock()
	if x.m == nil || len(x.m) >= execsLimit {
		x.m = map[execKey]proc.Info{}
	}
	x.m[k] = info
	x.mu.Unlock()
}

// execRead hands the worker what the reader read at exec event e, if any,
// and forgets it.
func (c *Capture) execRead(e *Event) (proc.Info, bool) {
	x := &c.execs
	x.mu.Lock()
	defer x.mu.Unlock()
	k := execKey{pid: e.PID, mono: e.MonoNs}
	info, ok := x.m[k]
	delete(x.m, k)
	return info, ok
}
