package ebpf

import (
	"errors"
	"testing"

	"github.com/zerotrace/zerotrace/internal/annotated"
)

var unhex = annotated.Hex // annotated hex dumps

// An egress event of "GET / HTTP/1.1\r\n" from 10.201.1.1:40000 to 10.201.1.2:8080.
var egressEvent = unhex(`
	00e1f50500000000 // ts 100000000
	00a0b1c2d3e4ffff // sock id
	2a00000000000001 // syscall trace id
	39300000         // pid 12345
	3a300000         // tid 12346
	78563412         // tcp seq 0x12345678
	10000000         // len 16
	10000000         // cap 16
	000000f0         // netns
	0200             // AF_INET
	409c             // local port 40000
	901f             // remote port 8080
	00               // egress
	06               // tcp
	0ac90101 000000000000000000000000 // local 10.201.1.1
	0ac90102 000000000000000000000000 // remote 10.201.1.2
	6375726c000000000000000000000000 // comm "curl"
	00               // tls: a syscall's bytes
	00               // flags
	000000000000     // padding, no skip
	474554202f20485454502f312e310d0a // "GET / HTTP/1.1\r\n"
`)

// An ingress read of 3016 bytes whose first 3000 ended a body the session
// counts by length (bpf/socket/bodies.h): its copy began at the body's end,
// the next request's "GET / HTTP/1.1\r\n".
var tailEvent = unhex(`
	00e1f50500000000 // ts 100000000
	00a0b1c2d3e4ffff // sock id
	2a00000000000001 // syscall trace id
	39300000         // pid 12345
	3a300000         // tid 12346
	78563412         // tcp seq 0x12345678: of the syscall's first byte
	c80b0000         // len 3016
	10000000         // cap 16
	000000f0         // netns
	0200             // AF_INET
	901f             // local port 8080
	409c             // remote port 40000
	01               // ingress
	06               // tcp
	0ac90102 000000000000000000000000 // local 10.201.1.2
	0ac90101 000000000000000000000000 // remote 10.201.1.1
	707974686f6e00000000000000000000 // comm "python"
	00               // tls: a syscall's bytes
	00               // flags
	0000             // padding
	b80b0000         // skip 3000: the body's tail
	474554202f20485454502f312e310d0a // "GET / HTTP/1.1\r\n"
`)

// An exec's event (bpf/socket/procs.h note_exec): pid 12345 now runs curl
// in cgroup 0x1f4, with its arguments "curl -s http://h/x", after the
// program file's name.
var execEvent = unhex(`
	00e1f50500000000 // ts 100000000
	f401000000000000 // sock id: the cgroup v2 id 500
	0000000000000000 // no syscall trace id
	39300000         // pid 12345
	39300000         // tid 12345
	00000000         // no tcp seq
	01000000         // len: PROC_EXEC
	18000000         // cap: 5 bytes of name, 19 of arguments
	00000000         // no netns
	0000             // no family
	0000             // no local port
	0000             // no remote port
	07               // DIR_PROC
	00               // no l4
	00000000 000000000000000000000000 // no local address
	00000000 000000000000000000000000 // no remote address
	6375726c000000000000000000000000 // comm "curl"
	00               // tls: none
	00               // flags
	000000000000     // padding, no skip
	6375726c00       // the file's name "curl\0"
	6375726c00 2d7300 687474703a2f2f682f7800 // "curl\0-s\0http://h/x\0"
`)

func TestDecodeEvent(t *testing.T) {
	var e Event
	if err := DecodeEvent(egressEvent, &e); err != nil {
		t.Fatal(err)
	}
	if e.MonoNs != 100000000 || e.PID != 12345 || e.TID != 12346 || e.TCPSeq != 0x12345678 || e.Len != 16 ||
		e.LocalPort != 40000 || e.RemotePort != 8080 || e.Dir != DirEgress || e.L4 != 6 || e.Comm != "curl" ||
		e.LocalIP.String() != "10.201.1.1" || e.RemoteIP.String() != "10.201.1.2" || string(e.Data) != "GET / HTTP/1.1\r\n" ||
		e.SyscallTraceID != 0x010000000000002a {
		t.Fatalf("decoded %+v", e)
	}
	v6 := append([]byte(nil), egressEvent...)
	v6[48] = 10
	copy(v6[56:72], []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	if err := DecodeEvent(v6, &e); err != nil || e.LocalIP.String() != "fd00::1" {
		t.Fatalf("ipv6: %v %v", err, e.LocalIP)
	}
	// An asyncio task's event (bpf/socket/asyncio.h): no socket, no payload.
	task := patch(patch(patch(egressEvent[:EventHeaderSize], 54, DirTask), 48, 0), 40, 0)
	if err := DecodeEvent(task, &e); err != nil || e.Dir != DirTask || e.LocalIP.IsValid() || len(e.Data) != 0 {
		t.Fatalf("task event: %v %+v", err, e)
	}
	// A process's end and its exec (bpf/socket/procs.h): no socket, Len the kind.
	for _, kind := range []byte{ProcExit, ProcExec} {
		proc := patch(patch(patch(patch(egressEvent[:EventHeaderSize], 54, DirProc), 48, 0), 40, 0), 36, kind)
		if err := DecodeEvent(proc, &e); err != nil || e.Dir != DirProc || e.Len != uint32(kind) || e.PID != 12345 ||
			e.LocalIP.IsValid() || len(e.Data) != 0 {
			t.Fatalf("process event %d: %v %+v", kind, err, e)
		}
	}
	// An exec's event carries the new program's arguments beyond its Len
	// (the kind), and its cgroup.
	if err := DecodeEvent(execEvent, &e); err != nil || e.Dir != DirProc || e.Len != ProcExec || e.SockID != 500 ||
		e.Comm != "curl" || string(e.Data) != "curl\x00curl\x00-s\x00http://h/x\x00" {
		t.Fatalf("exec event: %v %+v", err, e)
	}
	// The plaintext of an OpenSSL call (bpf/socket/tls.h).
	if err := DecodeEvent(patch(egressEvent, 104, TLSOpenSSL), &e); err != nil || e.TLS != TLSOpenSSL || string(e.Data) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("tls event: %v %+v", err, e)
	}
	// The first socket event after an event-loop wait (bpf/socket/wait.h).
	if err := DecodeEvent(patch(egressEvent, 105, EventWaited), &e); err != nil || e.Flags != EventWaited {
		t.Fatalf("waited event: %v %+v", err, e)
	}
	// A syscall that moved bytes past its copy on an L7 socket: its
	// record woke the ring's reader (bpf/socket/maps/events.h), which
	// tells it from the others by pastCopy (ring.go).
	if err := DecodeEvent(patch(egressEvent, 105, EventPastCopy|EventWaited), &e); err != nil || e.Flags != EventPastCopy|EventWaited {
		t.Fatalf("past-copy event: %v %+v", err, e)
	}
	if !pastCopy(patch(egressEvent, 105, EventPastCopy)) || pastCopy(patch(egressEvent, 105, EventWaited)) || pastCopy(egressEvent[:EventHeaderSize-1]) {
		t.Fatal("pastCopy: want true for flags EventPastCopy only, and false for a short record")
	}
	if err := DecodeEvent(egressEvent, &e); err != nil || e.Flags != 0 || e.Skip != 0 {
		t.Fatalf("flags of an event after none: %v %d, skip %d", err, e.Flags, e.Skip)
	}
	// A read whose copy began at the end of a body (bpf/socket/bodies.h).
	if err := DecodeEvent(tailEvent, &e); err != nil || e.Dir != DirIngress || e.Len != 3016 || e.Skip != 3000 ||
		e.TCPSeq != 0x12345678 || string(e.Data) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("tail event: %v %+v", err, e)
	}
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"short":                       {egressEvent[:50], ErrShortEvent},
		"cap beyond len":              {patch(egressEvent, 40, 0x20), ErrBadEvent},
		"cap beyond rec":              {egressEvent[:EventHeaderSize+4], ErrBadEvent},
		"exec's arguments beyond rec": {execEvent[:EventHeaderSize+23], ErrBadEvent},
		"bad dir":                     {patch(egressEvent, 54, 8), ErrBadEvent},
		"bad family":                  {patch(egressEvent, 48, 1), ErrBadEvent},
		"bad tls":                     {patch(egressEvent, 104, 3), ErrBadEvent},
		"unknown flag":                {patch(egressEvent, 105, 4), ErrBadEvent},
		"skip and cap beyond len":     {patch(tailEvent, 108, 0xb9), ErrBadEvent}, // 3001 + 16 > 3016
		"skip past len":               {patch(tailEvent, 109, 0x0c), ErrBadEvent}, // 3256
		"skip of a note":              {patch(patch(tailEvent[:EventHeaderSize], 54, DirTask), 40, 0), ErrBadEvent},
	} {
		if err := DecodeEvent(tc.b, &e); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func patch(b []byte, off int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[off] = v
	return c
}

func FuzzEventDecode(f *testing.F) {
	f.Add(egressEvent)
	f.Add(egressEvent[:EventHeaderSize])
	f.Add(execEvent)
	f.Add(tailEvent)
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if DecodeEvent(b, &e) == nil && int64(e.Skip)+int64(len(e.Data)) > int64(e.Len) && e.Dir != DirProc {
			t.Fatalf("captured %d bytes after %d of a %d-byte message", len(e.Data), e.Skip, e.Len)
		}
	})
}

func BenchmarkEventDecode(b *testing.B) {
	var e Event
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := DecodeEvent(egressEvent, &e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
