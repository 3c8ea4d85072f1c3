//go:build linux

package causality

import (
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TaskFor is how long a call an asyncio task made waits for its tasks to
// decide which request it belongs to (collector/tasks): the task that
// answers the request must begin the response and be freed, which takes as
// long as the request.
const TaskFor = 15 * time.Second

// TaskEvent is what the BPF programs report of an asyncio task
// (bpf/socket/asyncio.h TASK_*).
type TaskEvent uint8

const (
	// TaskNew: the task was created (arg: the task that created it, 0:
	// none).
	TaskNew TaskEvent = 0
	// TaskEnd: the task was freed.
	TaskEnd TaskEvent = 1
	// TaskAnswer: the task began the response of server request arg.
	TaskAnswer TaskEvent = 2
)

// Task records event ev of asyncio task id of process pid at atNs, and
// returns the calls it decides.
func (g *Guard) Task(pid uint32, ev TaskEvent, id, arg uint64, atNs int64) []*span.Span {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch ev {
	case TaskNew:
		g.tasks.Created(pid, id, arg, atNs)
		return nil
	case TaskAnswer:
		g.tasks.Answered(pid, id, arg, atNs)
		return nil
	case TaskEnd:
		g.tasks.Ended(pid, id, atNs)
	}
	var out []*span.Span
	filter(g.held, pid, func(h *heldSpan) bool {
		if h.task != 0 && g.decide(h) {
			out = append(out, h.s)
			return false
		}
		return true
	})
	return out
}

// decide settles a call made by an asyncio task when its tasks know which
// request it belongs to (linked with the evidence span.FlagTask), and
// reports whether they did.
func (g *Guard) decide(h *heldSpan) bool {
	owner, known := g.tasks.Owner(h.s.PID, h.task, h.s.StartNs)
	if !known {
		return false
	}
	ctx, _ := provisional(h.s)
	settleAs(h.s, ctx, owner, span.FlagTask)
	h.task = 0
	return true
}

// NoTasks records that pid runs an event loop whose tasks are not followed
// (asyncio without its C accelerator): its thread contexts are not used (the
// loop's thread reads every request, so whatever it holds when a task makes
// a call says nothing about that call).
func (g *Guard) NoTasks(pid uint32, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.process(pid)
	if p.untrusted == "" {
		p.untrusted = why
	}
}
