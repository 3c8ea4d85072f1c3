//go:build linux

package causality

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func ebpfSpan(pid uint32, tap span.TapSide, f span.Flags) *span.Span {
	return &span.Span{SignalSource: span.SourceEBPF, PID: pid, TapSide: tap, Flags: f, ReqTID: 1, RespTID: 2,
		SyscallTraceIDReq: 7, SyscallTraceIDResp: 7}
}

// cProgram starts a C program (sleep) for the test and returns its pid.
func cProgram(t *testing.T) uint32 {
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	return uint32(sleep.Process.Pid)
}

func TestGuard(t *testing.T) {
	c := cProgram(t)         // thread contexts trusted
	g := uint32(os.Getpid()) // this test binary is a Go program
	var gd Guard
	cases := []struct {
		name string
		s    *span.Span
		keep bool
	}{
		{"C program, client call", ebpfSpan(c, span.TapClientProcess, 0), true},
		{"C program, server request", ebpfSpan(c, span.TapServerProcess, 0), true},
		{"C program, a server request on a multiplexed connection", ebpfSpan(c, span.TapServerProcess, span.FlagMultiplexed), false},
		{"C program, a call on a multiplexed connection", ebpfSpan(c, span.TapClientProcess, span.FlagMultiplexed), true},
		{"C program, a client whose response came on another thread", ebpfSpan(c, span.TapClientProcess, span.FlagReqTIDMismatch), true},
		{"C program, a server request answered by another thread", ebpfSpan(c, span.TapServerProcess, span.FlagReqTIDMismatch), false},
		{"...and from then on every span of that process", ebpfSpan(c, span.TapClientProcess, 0), false},
		{"Go program", ebpfSpan(g, span.TapClientProcess, 0), false},
	}
	for _, tc := range cases {
		gd.Check(tc.s)
		kept := tc.s.SyscallTraceIDReq != 0 && tc.s.SyscallTraceIDResp != 0
		if kept != tc.keep {
			t.Errorf("%s: ids kept %v, want %v", tc.name, kept, tc.keep)
		}
	}
	if gd.Untrusted(g) == "" || gd.Untrusted(c) == "" {
		t.Errorf("reasons: go %q, c %q", gd.Untrusted(g), gd.Untrusted(c))
	}
	// The process ends: its spans still open are judged as before, until
	// the pid's next process has its first event.
	gd.Ended(c)
	if r := gd.Untrusted(c); r == "" {
		t.Errorf("after Ended: trusted, want the ended process's reason kept")
	}
	gd.Began(g)
	if gd.Untrusted(g) == "" {
		t.Errorf("Began of a pid whose process did not end dropped its reason")
	}
	gd.Began(c)
	if r := gd.Untrusted(c); r != "" {
		t.Errorf("after Ended and Began: %q", r)
	}
}

func TestIsGo(t *testing.T) {
	self, _ := os.Executable()
	sh, _ := exec.LookPath("sh")
	for path, want := range map[string]bool{self: true, sh: false, "/nonexistent": false, "/etc/hostname": false} {
		if got := IsGo(path); got != want {
			t.Errorf("IsGo(%s) = %v, want %v", path, got, want)
		}
	}
}

// A call with a provisional token waits for its worker's verdict: confirmed
// gives it the context that was handed over, refuted or none (HoldFor)
// drops it, and a verdict that came first settles the call at once.
func TestGuardHandoffVerdicts(t *testing.T) {
	pid := cProgram(t)
	const ctx = 0x0100_0000_0000_002a
	call := func(tid uint32, end int64) *span.Span {
		return &span.Span{SignalSource: span.SourceEBPF, PID: pid, TapSide: span.TapClientProcess, ReqTID: tid, RespTID: tid,
			EndNs: end, SyscallTraceIDReq: ctx | HandoffBit, SyscallTraceIDResp: ctx | HandoffBit}
	}
	var g Guard
	a, b, c, d := call(11, 100), call(12, 100), call(13, 100), call(14, 100)
	for _, s := range []*span.Span{a, b, c} {
		if g.Check(s) {
			t.Fatalf("span of worker %d emitted before its verdict", s.ReqTID)
		}
	}
	const handed = 0x0100_0000_0000_0007 // the context handed over with the call
	if out := g.Verdict(pid, 11, ctx, Confirmed, handed, 200); len(out) != 1 || out[0] != a || a.SyscallTraceIDReq != handed || a.SyscallTraceIDResp != handed {
		t.Errorf("confirmed: %v %+v", out, a)
	}
	if out := g.Verdict(pid, 12, ctx, Refuted, ctx+5, 200); len(out) != 1 || b.SyscallTraceIDReq != 0 || b.SyscallTraceIDResp != 0 {
		t.Errorf("refuted: %v %+v", out, b)
	}
	if out := g.Verdict(pid, 13, ctx+1, Confirmed, ctx+1, 200); len(out) != 0 {
		t.Errorf("a verdict on another context settled %v", out)
	}
	if out := g.Expire(100 + int64(HoldFor) + 1); len(out) != 1 || out[0] != c || c.SyscallTraceIDReq != 0 {
		t.Errorf("expired: %v %+v", out, c)
	}
	if out := g.Verdict(pid, 14, ctx, Confirmed, handed, 300); len(out) != 0 {
		t.Errorf("early verdict settled %v", out)
	}
	if !g.Check(d) || d.SyscallTraceIDReq != handed {
		t.Errorf("call after its verdict: %+v", d)
	}
}

// tokenCall is a worker tid's call of process pid, ended at 1000, carrying
// token on both sides.
func tokenCall(pid, tid uint32, token uint64) *span.Span {
	return &span.Span{SignalSource: span.SourceEBPF, PID: pid, TapSide: span.TapClientProcess, ReqTID: tid, RespTID: tid,
		EndNs: 1000, SyscallTraceIDReq: token | HandoffBit, SyscallTraceIDResp: token | HandoffBit}
}

// A call no handoff covered carries a token; the request a worker handed
// its result to claims it. One claimant links the call once ClaimWait has
// passed without another; two claimants, or none within HoldFor, leave it
// unlinked; a claim that came before the span counts the same.
func TestGuardClaims(t *testing.T) {
	pid := cProgram(t)
	const owner, other = 0x0100_0000_0000_0007, 0x0100_0000_0000_0009
	call := func(tid uint32, token uint64) *span.Span { return tokenCall(pid, tid, token) }
	one, torn, none := call(21, 0x31), call(22, 0x32), call(23, 0x33)
	var g Guard
	for _, s := range []*span.Span{one, torn, none} {
		if g.Check(s) {
			t.Fatalf("call of worker %d emitted before its verdict", s.ReqTID)
		}
	}
	if out := g.Verdict(pid, 21, 0x31, Claimed, owner, 2000); len(out) != 0 {
		t.Errorf("a claim settled at once: %v", out)
	}
	g.Verdict(pid, 22, 0x32, Claimed, owner, 2000)
	g.Verdict(pid, 22, 0x32, Claimed, other, 2100)
	g.Verdict(pid, 21, 0x31, Claimed, owner, 2200) // the same claimant again
	if out := g.Expire(2000 + int64(ClaimWait) - 1); len(out) != 1 || out[0] != torn || torn.SyscallTraceIDReq != 0 || torn.SyscallTraceIDResp != 0 {
		t.Errorf("claimed by two requests: %v %+v", out, torn)
	}
	if out := g.Expire(2000 + int64(ClaimWait)); len(out) != 1 || out[0] != one || one.SyscallTraceIDReq != owner || one.SyscallTraceIDResp != owner {
		t.Errorf("claimed by one request: %v %+v", out, one)
	}
	if out := g.Expire(1000 + int64(HoldFor) + 1); len(out) != 1 || out[0] != none || none.SyscallTraceIDReq != 0 {
		t.Errorf("never claimed: %v %+v", out, none)
	}
	if !one.Flags.Has(span.FlagHandoff) || torn.Flags.Has(span.FlagHandoff) || none.Flags.Has(span.FlagHandoff) {
		t.Errorf("handoff flags: linked %v, torn %v, unclaimed %v", one.Flags, torn.Flags, none.Flags)
	}
	// The claim comes first, the span after it.
	g.Verdict(pid, 24, 0x34, Claimed, owner, 5000)
	early := call(24, 0x34)
	if g.Check(early) {
		t.Fatal("a claimed call emitted before ClaimWait")
	}
	if out := g.Expire(5000 + int64(ClaimWait)); len(out) != 1 || out[0] != early || early.SyscallTraceIDReq != owner {
		t.Errorf("claim before its span: %v %+v", out, early)
	}
	// A call whose request side carried something else is never linked.
	mixed := call(25, 0x35)
	mixed.SyscallTraceIDReq = other
	g.Check(mixed)
	g.Verdict(pid, 25, 0x35, Claimed, owner, 6000)
	if out := g.Expire(6000 + int64(ClaimWait)); len(out) != 1 || mixed.SyscallTraceIDReq != 0 || mixed.SyscallTraceIDResp != 0 {
		t.Errorf("mixed sides: %v %+v", out, mixed)
	}
}

// A worker's call for a work item (bpf/socket/pyqueue.h) gets its Item
// verdict when it begins, before its span: the span is settled at once with
// the item's request, even seconds later (a slow call, within ItemFor), and
// a claim by another request the worker wakes afterwards changes nothing.
func TestGuardItems(t *testing.T) {
	pid := cProgram(t)
	const owner, other = 0x0100_0000_0000_0007, 0x0100_0000_0000_0009
	call := func(tid uint32, token uint64) *span.Span { return tokenCall(pid, tid, token) }
	var g Guard
	g.Verdict(pid, 31, 0x41, Item, owner, 1000)
	g.Verdict(pid, 31, 0x41, Claimed, other, 1500)
	g.Verdict(pid, 32, 0x42, Item, owner, 1000)
	g.Expire(1000 + 5*int64(time.Second))
	slow := call(31, 0x41)
	if !g.Check(slow) || slow.SyscallTraceIDReq != owner || slow.SyscallTraceIDResp != owner || !slow.Flags.Has(span.FlagHandoff) {
		t.Errorf("a call 5 s after its item verdict: %+v", slow)
	}
	g.Expire(1000 + int64(ItemFor) + 1)
	late := call(32, 0x42)
	if g.Check(late) {
		t.Errorf("a call after ItemFor settled by a forgotten verdict: %+v", late)
	}
	// The item verdict after the span (the ring's order is the reverse only
	// if a reader fell behind): settled at once too.
	held := call(34, 0x44)
	g.Check(held)
	if out := g.Verdict(pid, 34, 0x44, Item, owner, 20_000); len(out) != 1 || held.SyscallTraceIDReq != owner {
		t.Errorf("item verdict after the span: %v %+v", out, held)
	}
}

// A verdict from a thread that moved neither side of the call settles it
// only in a Go program whose goroutines are tracked: there the goroutine
// that made the call gives the verdict from whichever thread the scheduler
// runs it on (the token names the call). Elsewhere another thread's
// verdict on the token settles nothing.
func TestGuardGoVerdictThread(t *testing.T) {
	const owner = 0x0100_0000_0000_0007
	for _, tc := range []struct {
		name    string
		pid     uint32
		tracked bool
		first   bool // the verdict comes before the span
		linked  bool
	}{
		{"go, tracked", uint32(os.Getpid()), true, false, true},
		{"go, tracked, verdict first", uint32(os.Getpid()), true, true, true},
		{"C program", 0, false, false, false},
		{"C program, verdict first", 0, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := tc.pid
			if pid == 0 {
				pid = cProgram(t)
			}
			var g Guard
			if tc.tracked {
				g.TrackGoroutines(pid)
			}
			for _, kind := range []Kind{Confirmed, Claimed} {
				token := uint64(0x40 + kind)
				s := tokenCall(pid, 31, token) // request and response on thread 31
				if tc.tracked {
					s.SyscallTraceIDReq |= GoroutineBit
					s.SyscallTraceIDResp |= GoroutineBit
				}
				if tc.first {
					g.Verdict(pid, 32, token, kind, owner, 2000)
				}
				done := g.Check(s)
				if !tc.first {
					g.Verdict(pid, 32, token, kind, owner, 2000)
				}
				if !done {
					g.Expire(2000 + int64(ClaimWait))
					g.Expire(1000 + int64(HoldFor) + 1)
				}
				got := s.SyscallTraceIDReq == owner && s.SyscallTraceIDResp == owner
				if got != tc.linked {
					t.Errorf("kind %d: linked %v, want %v (%x/%x)", kind, got, tc.linked, s.SyscallTraceIDReq, s.SyscallTraceIDResp)
				}
			}
		})
	}
}
