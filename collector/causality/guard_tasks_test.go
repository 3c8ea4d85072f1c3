//go:build linux

package causality

import (
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// An asyncio task's call waits for its tasks to decide: the call, made by
// a task created by the task that answered the request while it was open,
// takes the request's id with FlagTask once both tasks are gone and the
// request's server span came; a background task's call (created by no
// task) is settled with none; a call whose tasks stay undecided is dropped
// after TaskFor.
func TestGuardTasks(t *testing.T) {
	pid := cProgram(t)
	const ms = int64(1e6)
	const req = 0x0100_0000_0000_0042
	call := func(token uint64, start int64) *span.Span {
		return &span.Span{SignalSource: span.SourceEBPF, PID: pid, TapSide: span.TapClientProcess, ReqTID: 1, RespTID: 1,
			StartNs: start, EndNs: start + 5*ms, SyscallTraceIDReq: token | HandoffBit, SyscallTraceIDResp: token | HandoffBit}
	}
	var g Guard
	g.Task(pid, TaskNew, 10, 0, 1*ms)  // the request's task, created by a callback
	g.Task(pid, TaskNew, 11, 10, 3*ms) // gathered by it
	g.Task(pid, TaskNew, 20, 0, 0)     // a background task
	g.Verdict(pid, 1, 0xa, Task, 11, 4*ms)
	g.Verdict(pid, 1, 0xb, Task, 20, 4*ms)
	g.Verdict(pid, 1, 0xc, Task, 11, 4*ms)
	a, b, c := call(0xa, 4*ms), call(0xb, 4*ms), call(0xc, 4*ms)
	for _, s := range []*span.Span{a, b, c} {
		if g.Check(s) {
			t.Fatalf("call %x settled before its tasks ended", s.SyscallTraceIDReq)
		}
	}
	server := &span.Span{SignalSource: span.SourceEBPF, PID: pid, TapSide: span.TapServerProcess, ReqTID: 1, RespTID: 1,
		StartNs: 2 * ms, EndNs: 20 * ms, SyscallTraceIDReq: req, SyscallTraceIDResp: req}
	if !g.Check(server) {
		t.Fatal("server span held")
	}
	g.Task(pid, TaskAnswer, 10, req, 15*ms)
	if out := g.Task(pid, TaskEnd, 11, 0, 16*ms); len(out) != 0 {
		t.Fatalf("settled while the answering task lives: %v", out)
	}
	out := g.Task(pid, TaskEnd, 10, 0, 17*ms)
	if len(out) != 2 {
		t.Fatalf("%d calls settled by the request task's end, want 2", len(out))
	}
	for _, s := range out {
		if s.SyscallTraceIDReq != req || s.SyscallTraceIDResp != req || !s.Flags.Has(span.FlagTask) || s.Flags.Has(span.FlagHandoff) {
			t.Errorf("call settled with %x/%x flags %b", s.SyscallTraceIDReq, s.SyscallTraceIDResp, s.Flags)
		}
	}
	if out := g.Task(pid, TaskEnd, 20, 0, 18*ms); len(out) != 1 || out[0] != b || b.SyscallTraceIDReq != 0 {
		t.Errorf("background call: %v, ids %x", out, b.SyscallTraceIDReq)
	}
	// A call whose task never ends is dropped after TaskFor.
	g.Task(pid, TaskNew, 30, 0, 20*ms)
	g.Verdict(pid, 1, 0xd, Task, 30, 21*ms)
	d := call(0xd, 21*ms)
	g.Check(d)
	if out := g.Expire(d.EndNs + int64(TaskFor) + 1); len(out) != 1 || out[0] != d || d.SyscallTraceIDReq != 0 {
		t.Errorf("undecided call after TaskFor: %v, ids %x", out, d.SyscallTraceIDReq)
	}
}

// A Node.js turn's context (TurnBit) is kept without the bit and named by
// FlagCallback, in a process that is not Go's.
func TestGuardTurnBit(t *testing.T) {
	pid := cProgram(t)
	var g Guard
	s := ebpfSpan(pid, span.TapClientProcess, 0)
	s.SyscallTraceIDReq |= TurnBit
	s.SyscallTraceIDResp |= TurnBit
	if !g.Check(s) || s.SyscallTraceIDReq != 7 || s.SyscallTraceIDResp != 7 || !s.Flags.Has(span.FlagCallback) {
		t.Errorf("turn context: %x/%x flags %b", s.SyscallTraceIDReq, s.SyscallTraceIDResp, s.Flags)
	}
}
