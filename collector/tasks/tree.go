package tasks

import "time"

// Keep is how long an ended task, and a served request's start, are kept
// for the calls that still need them: a call waits at most as long as the
// collector holds it (collector/causality TaskFor, 15 s); a task that
// created one still kept is kept with it.
const Keep = 20 * time.Second

// maxTasks bounds the tasks kept per process (about 100 bytes each): past
// it the process starts over, and the calls its tasks made meanwhile keep
// no context.
const maxTasks = 1 << 17

// maxDepth bounds the creators walked from a task.
const maxDepth = 64

// Tree holds the tasks of event-loop processes. Not safe for concurrent
// use (the collector's causality guard serializes it).
type Tree struct {
	procs map[uint32]*proc
}

type proc struct {
	tasks  map[uint64]*task
	served map[uint64]int64 // server request context → when it was read (ns)
}

type task struct {
	parent  uint64 // the task that created it (0: none)
	created int64
	ended   int64 // 0: alive
	answers []answer
}

type answer struct {
	ctx uint64 // the server request
	at  int64  // when its response began
}

func (t *Tree) proc(pid uint32) *proc {
	if t.procs == nil {
		t.procs = map[uint32]*proc{}
	}
	p := t.procs[pid]
	if p == nil {
		p = &proc{tasks: map[uint64]*task{}, served: map[uint64]int64{}}
		t.procs[pid] = p
	}
	return p
}

// Tracks reports whether process pid has reported a task.
func (t *Tree) Tracks(pid uint32) bool {
	_, ok := t.procs[pid]
	return ok
}

// Created records task id of pid, created at atNs by task parent (0: by no
// task).
func (t *Tree) Created(pid uint32, id, parent uint64, atNs int64) {
	p := t.proc(pid)
	if len(p.tasks) >= maxTasks {
		clear(p.tasks)
	}
	p.tasks[id] = &task{parent: parent, created: atNs}
}

// Ended records that task id of pid was freed at atNs.
func (t *Tree) Ended(pid uint32, id uint64, atNs int64) {
	if k := t.proc(pid).tasks[id]; k != nil && k.ended == 0 {
		k.ended = atNs
	}
}

// Answered records that task id of pid began the response of server
// request ctx at atNs.
func (t *Tree) Answered(pid uint32, id, ctx uint64, atNs int64) {
	if k := t.proc(pid).tasks[id]; k != nil {
		k.answers = append(k.answers, answer{ctx, atNs})
	}
}

// Served records that server request ctx of pid was read at startNs (its
// server span's start), for processes that report tasks.
func (t *Tree) Served(pid uint32, ctx uint64, startNs int64) {
	if ctx == 0 || !t.Tracks(pid) {
		return
	}
	t.procs[pid].served[ctx] = startNs
}

// Owner returns the server request task id of pid worked for at atNs
// (0: none), and whether that is known yet: every task it depends on must
// have ended, and the requests they answered must have been served.
func (t *Tree) Owner(pid uint32, id uint64, atNs int64) (ctx uint64, known bool) {
	p := t.procs[pid]
	if p == nil {
		return 0, true
	}
	for depth := 0; depth < maxDepth && id != 0; depth++ {
		k := p.tasks[id]
		if k == nil {
			return 0, true // not followed (or forgotten): no evidence
		}
		if k.ended == 0 {
			return 0, false
		}
		if len(k.answers) > 0 {
			return p.open(k.answers, atNs)
		}
		id, atNs = k.parent, k.created
	}
	return 0, true
}

// open returns the one of answers open at atNs: read at or before it, its
// response begun at or after it.
func (p *proc) open(answers []answer, atNs int64) (uint64, bool) {
	var found uint64
	n := 0
	for _, a := range answers {
		read, ok := p.served[a.ctx]
		if !ok {
			return 0, false // its server span has not come yet
		}
		if read <= atNs && atNs <= a.at {
			found = a.ctx
			n++
		}
	}
	if n != 1 {
		return 0, true
	}
	return found, true
}

// Expire forgets, as of nowNs, the tasks that ended more than Keep ago and
// are no creator of a task kept, and the requests served more than Keep
// ago.
func (t *Tree) Expire(nowNs int64) {
	old := func(k *task) bool { return k.ended != 0 && nowNs-k.ended > int64(Keep) }
	for pid, p := range t.procs {
		creators := map[uint64]bool{} // of tasks kept
		for _, k := range p.tasks {
			if old(k) {
				continue
			}
			for id, depth := k.parent, 0; id != 0 && depth < maxDepth && !creators[id]; depth++ {
				creators[id] = true
				pk := p.tasks[id]
				if pk == nil {
					break
				}
				id = pk.parent
			}
		}
		for id, k := range p.tasks {
			if old(k) && !creators[id] {
				delete(p.tasks, id)
			}
		}
		for ctx, at := range p.served {
			if nowNs-at > int64(Keep) {
				delete(p.served, ctx)
			}
		}
		if len(p.tasks) == 0 && len(p.served) == 0 {
			delete(t.procs, pid)
		}
	}
}

// Forget drops what is known of pid (it exited).
func (t *Tree) Forget(pid uint32) { delete(t.procs, pid) }
