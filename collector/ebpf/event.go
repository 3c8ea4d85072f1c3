package ebpf

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Event is one captured message, decoded from the ring buffer.
type Event struct {
	MonoNs         uint64 // CLOCK_MONOTONIC
	SockID         uint64
	SyscallTraceID uint64
	PID, TID       uint32
	TCPSeq         uint32
	Len            uint32 // bytes the syscall moved
	NetNS          uint32
	Family         uint16
	LocalPort      uint16
	RemotePort     uint16
	Dir            uint8 // DirEgress, DirIngress, DirClose, DirAccepted, DirConnected
	L4             uint8
	LocalIP        netip.Addr
	RemoteIP       netip.Addr
	Comm           string
	TLS            uint8  // TLSOpenSSL, TLSGo: plaintext of a TLS library call; 0: a syscall's bytes
	Flags          uint8  // EventWaited
	Skip           uint32 // bytes the syscall moved before Data[0]: its copy began at a body's end (bpf/socket/bodies.h)
	Data           []byte // captured payload: aliases the record
}

// Event directions.
const (
	DirEgress  = 0
	DirIngress = 1
	DirClose   = 2
	// DirAccepted: the socket came from accept(2): the process is its server.
	DirAccepted = 3
	// DirConnected: the socket was connect(2)ed: the process is its client.
	DirConnected = 4
	// DirVerdict: a pool worker's verdict on a call (bpf/socket/handoff.h):
	// TID is the worker, SyscallTraceID the call's token, SockID the
	// context of the request the worker handed the result to, Len the kind
	// (collector/causality.Kind).
	DirVerdict = 5
	// DirTask: an asyncio task's life (bpf/socket/asyncio.h): SockID is
	// the task's id, Len what happened (collector/causality.TaskEvent),
	// SyscallTraceID the task that created it or the request it answered.
	DirTask = 6
	// DirProc: process PID ended or exec'd another program
	// (bpf/socket/procs.h); Len is ProcExit or ProcExec. An exec's event
	// names the new program: Comm; Data its file's name, a NUL, and its
	// arguments as the kernel copied them (NUL-separated, at most 512
	// bytes: proc.ExecOf); SockID its cgroup v2 id; SyscallTraceID where
	// its arguments start in its memory (mm->arg_start).
	DirProc = 7
)

// DirProc kinds (bpf/socket/procs.h PROC_*), Event.Len.
const (
	ProcExit = 0
	ProcExec = 1
)

// TLS libraries (bpf/socket/tls.h TLS_LIB_*), Event.TLS.
const (
	TLSOpenSSL = 1
	TLSGo      = 2
)

// Event flags (bpf/socket/event.h EVENT_*), Event.Flags.
const (
	// EventWaited: the thread entered an event-loop wait (epoll_wait,
	// poll, select) since its previous socket event (bpf/socket/wait.h).
	EventWaited = 1
	// EventPastCopy: the syscall moved bytes past its copy on a TCP
	// socket read as L7; its record woke the ring's reader (ring.go
	// wakeGap).
	EventPastCopy = 2
)

// EventHeaderSize is the fixed part of struct event (bpf/socket/event.h).
const EventHeaderSize = 112

// Decoding errors.
var (
	ErrShortEvent = errors.New("event shorter than its header")
	ErrBadEvent   = errors.New("event fields inconsistent")
)

// DecodeEvent decodes a ring buffer record into e without allocating (the
// comm string aside, which is interned for the common names).
func DecodeEvent(b []byte, e *Event) error {
	if len(b) < EventHeaderSize {
		return ErrShortEvent
	}
	le := binary.LittleEndian
	e.MonoNs = le.Uint64(b[0:])
	e.SockID = le.Uint64(b[8:])
	e.SyscallTraceID = le.Uint64(b[16:])
	e.PID = le.Uint32(b[24:])
	e.TID = le.Uint32(b[28:])
	e.TCPSeq = le.Uint32(b[32:])
	e.Len = le.Uint32(b[36:])
	capLen := le.Uint32(b[40:])
	e.NetNS = le.Uint32(b[44:])
	e.Family = le.Uint16(b[48:])
	e.LocalPort = le.Uint16(b[50:])
	e.RemotePort = le.Uint16(b[52:])
	e.Dir = b[54]
	e.L4 = b[55]
	// A message's capture is part of the bytes it moved; an exec's
	// arguments (DirProc) have no such bound.
	if e.Dir > DirProc || (capLen > e.Len && e.Dir != DirProc) || int(capLen) > len(b)-EventHeaderSize {
		return ErrBadEvent
	}
	switch {
	case e.Dir == DirVerdict || e.Dir == DirTask || e.Dir == DirProc:
		e.LocalIP, e.RemoteIP = netip.Addr{}, netip.Addr{} // no socket
	case e.Family == 2:
		e.LocalIP = netip.AddrFrom4([4]byte(b[56:60]))
		e.RemoteIP = netip.AddrFrom4([4]byte(b[72:76]))
	case e.Family == 10:
		e.LocalIP = netip.AddrFrom16([16]byte(b[56:72])).Unmap()
		e.RemoteIP = netip.AddrFrom16([16]byte(b[72:88])).Unmap()
	default:
		return ErrBadEvent
	}
	e.Comm = intern(commOf(b))
	e.TLS = b[104]
	e.Flags = b[105]
	if e.TLS > TLSGo || e.Flags&^(EventWaited|EventPastCopy) != 0 {
		return ErrBadEvent
	}
	// A copy that began at a body's end began inside a syscall's bytes.
	e.Skip = le.Uint32(b[108:])
	if e.Skip != 0 && (e.Dir > DirIngress || e.Skip >= e.Len || capLen > e.Len-e.Skip) {
		return ErrBadEvent
	}
	e.Data = b[EventHeaderSize : EventHeaderSize+int(capLen)]
	return nil
}

// commOf is the thread name in the header of event record b.
func commOf(b []byte) []byte {
	comm := b[88:104]
	n := 0
	for n < len(comm) && comm[n] != 0 {
		n++
	}
	return comm[:n]
}

var interned = map[string]string{}

func intern(b []byte) string {
	if s, ok := interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(interned) < 4096 {
		interned[s] = s
	}
	return s
}
