//go:build linux

package ebpf

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/zerotrace/zerotrace/collector/cpython"
	"github.com/zerotrace/zerotrace/collector/procmaps"
)

// pyTracker attaches the work-queue uprobes (bpf/socket/pyqueue.h) to each
// CPython _queue module a traced process has loaded, and the task uprobes
// (bpf/socket/asyncio.h) to each _asyncio module, once per file: a uprobe
// on a shared object fires in every process that maps it. A Python process
// that has not imported both modules yet at its first event is looked at
// again, a few times, as its later events come.
type pyTracker struct {
	queue    chan uint32
	attached map[exeID]error
	retry    map[uint32]pyRetry // Python processes without the modules yet
	noTasks  map[uint32]bool    // event loops without _asyncio, logged

	mu       sync.Mutex
	followed map[uint32]bool // processes whose work queues are followed
	tasks    map[uint32]bool // processes whose asyncio tasks are followed
}

// TasksFollowed reports whether the asyncio tasks of process pid are
// followed (its _asyncio module's uprobes are attached).
func (c *Capture) TasksFollowed(pid uint32) bool {
	c.pys.mu.Lock()
	defer c.pys.mu.Unlock()
	return c.pys.tasks[pid]
}

// QueuesFollowed reports whether the work queues of process pid are
// followed (its _queue module's uprobes are attached).
func (c *Capture) QueuesFollowed(pid uint32) bool {
	c.pys.mu.Lock()
	defer c.pys.mu.Unlock()
	return c.pys.followed[pid]
}

type pyRetry struct {
	next  time.Time
	tries int
}

const (
	pyRetryEvery = 2 * time.Second
	pyRetries    = 15
)

// pyNewProcess queues pid's look for work queues (never blocking the
// reader).
func (c *Capture) pyNewProcess(pid uint32) {
	select {
	case c.pys.queue <- pid:
	default:
	}
}

// pyTrack is the tracker's goroutine.
func (c *Capture) pyTrack() {
	defer c.wg.Done()
	tick := time.NewTicker(pyRetryEvery)
	defer tick.Stop()
	c.pys.attached = map[exeID]error{}
	c.pys.retry = map[uint32]pyRetry{}
	// Processes running before the capture started (their first event may
	// be long after their pool took its first items).
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if pid, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && pid != uint64(os.Getpid()) {
				c.trackPy(uint32(pid), pyRetries)
			}
		}
	}
	for {
		select {
		case <-c.done:
			return
		case pid := <-c.pys.queue:
			c.trackPy(pid, 0)
		case now := <-tick.C:
			for pid, r := range c.pys.retry {
				if now.After(r.next) {
					delete(c.pys.retry, pid)
					c.trackPy(pid, r.tries)
				}
			}
		}
	}
}

// trackPy attaches the uprobes to the _queue and _asyncio modules pid has
// mapped; a Python process without both is looked at again later.
func (c *Capture) trackPy(pid uint32, tries int) {
	dir := filepath.Join("/proc", strconv.Itoa(int(pid)))
	files, err := procmaps.Read(filepath.Join(dir, "maps"))
	if err != nil {
		return // gone
	}
	mods := pyModules(files)
	python := strings.HasPrefix(filepath.Base(exePath(filepath.Join(dir, "exe"))), "python")
	if (mods.queue == "" || mods.asyncio == "") && python && tries < pyRetries && len(c.pys.retry) < 4096 {
		c.pys.retry[pid] = pyRetry{time.Now().Add(pyRetryEvery), tries + 1}
	}
	if mods.queue != "" {
		err, first := attachOnce(c.pys.attached, filepath.Join(dir, "root", mods.queue), c.attachQueue)
		switch {
		case first && err != nil:
			c.opt.Logger.Info("CPython work queues not followed; pool workers' calls fall back to wakes (claims)",
				"pid", pid, "module", mods.queue, "err", err)
		case first:
			c.opt.Logger.Debug("CPython work queues followed", "pid", pid, "module", mods.queue)
		}
		if err == nil {
			c.pys.follow(&c.pys.followed, pid)
		}
	}
	if mods.asyncio != "" {
		err, first := attachOnce(c.pys.attached, filepath.Join(dir, "root", mods.asyncio), c.attachTasks)
		switch {
		case first && err != nil:
			c.opt.Logger.Info("asyncio tasks not followed; an event loop's calls carry no context",
				"pid", pid, "module", mods.asyncio, "err", err)
		case first:
			c.opt.Logger.Debug("asyncio tasks followed", "pid", pid, "module", mods.asyncio)
		}
		if err == nil {
			c.pys.follow(&c.pys.tasks, pid)
		}
	} else if python && !c.pys.noTasks[pid] && eventLoop(dir) {
		// asyncio without its accelerator (or another event loop): tasks
		// are Python objects no uprobe sees.
		if c.pys.noTasks == nil || len(c.pys.noTasks) > 65536 {
			c.pys.noTasks = map[uint32]bool{}
		}
		c.pys.noTasks[pid] = true
		c.guard.NoTasks(pid, "an event loop without CPython's _asyncio module: its tasks are not followed")
		c.opt.Logger.Info("asyncio tasks not followed: an event loop without CPython's _asyncio module (pure-Python asyncio); causality falls back to headers and containment",
			"pid", pid, "exe", exePath(filepath.Join(dir, "exe")))
	}
}

// follow adds pid to the set *m (under the tracker's lock).
func (t *pyTracker) follow(m *map[uint32]bool, pid uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if *m == nil || len(*m) > 65536 {
		*m = map[uint32]bool{}
	}
	(*m)[pid] = true
}

type pyMods struct{ queue, asyncio string }

// pyModules returns the paths of the _queue and _asyncio extension modules
// among the files a process maps ("" when not mapped; a deleted one is not
// attached).
func pyModules(files []procmaps.File) pyMods {
	var m pyMods
	for _, f := range files {
		base := filepath.Base(f.Path)
		if f.Deleted || !strings.HasSuffix(base, ".so") {
			continue
		}
		switch {
		case strings.HasPrefix(base, "_queue."):
			m.queue = f.Path
		case strings.HasPrefix(base, "_asyncio."):
			m.asyncio = f.Path
		}
	}
	return m
}

// eventLoop reports whether the process at dir (/proc/<pid>) has an epoll
// instance open: asyncio's selector loop (CPython's own servers and
// clients poll(2) or select(2)).
func eventLoop(dir string) bool {
	ents, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, "fd", e.Name())); err == nil && l == "anon_inode:[eventpoll]" {
			return true
		}
	}
	return false
}

// attachQueue attaches the put, get and get-return uprobes to the module
// at path.
func (c *Capture) attachQueue(path string) error {
	return c.attachFound(path, "SimpleQueue's methods", func(r io.ReaderAt) ([]uprobeAt, error) {
		q, err := cpython.FindQueue(r)
		if err != nil {
			return nil, err
		}
		var probes []uprobeAt
		for _, m := range q.Puts() {
			item, _ := m.Item() // FindQueue checked it
			probes = append(probes, uprobeAt{c.objs.PyQueuePut, false, m.Offset, uint64(item)})
		}
		for _, m := range q.Gets() {
			probes = append(probes, uprobeAt{c.objs.PyQueueGet, false, m.Offset, 0}, uprobeAt{c.objs.PyQueueGot, true, m.Offset, 0})
		}
		return probes, nil
	})
}

// uprobeAt is a program to attach at an offset of a file (a return probe
// when ret), with a cookie.
type uprobeAt struct {
	prog   *ebpf.Program
	ret    bool
	at     uint64
	cookie uint64
}

// attachFound reads the file at path, finds the probes' offsets with find
// (what for: its error's words) and attaches them all, or none.
func (c *Capture) attachFound(path, what string, find func(io.ReaderAt) ([]uprobeAt, error)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	probes, err := find(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("finding %s: %w", what, err)
	}
	return c.attachAll(path, probes)
}

// attachAll attaches every probe to the file at path, or none.
func (c *Capture) attachAll(path string, probes []uprobeAt) error {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return fmt.Errorf("opening module: %w", err)
	}
	var ls []link.Link
	for _, p := range probes {
		attach := ex.Uprobe
		if p.ret {
			attach = ex.Uretprobe
		}
		l, err := attach("", p.prog, &link.UprobeOptions{Address: p.at, Cookie: p.cookie})
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("attaching uprobes: %w", err)
		}
		ls = append(ls, l)
	}
	c.addLinks(ls...)
	return nil
}

// attachTasks attaches the asyncio task uprobes to the _asyncio module at
// path: a task's creation and freeing, and its steps' entries (the step
// wrapper and task_wakeup) and returns.
func (c *Capture) attachTasks(path string) error {
	return c.attachFound(path, "the task functions", func(r io.ReaderAt) ([]uprobeAt, error) {
		a, err := cpython.FindAsyncio(r)
		// The steps' returns before their entries (attachAll attaches
		// one after another while the loop runs): a step followed is then
		// always seen to return; the other way round, a step between the
		// two attaches left the loop inside a step for good and no later
		// task known (TestCaptureAsyncioAttachedMidStep). A return without
		// its entry finds no step open: ignored (bpf/socket/asyncio.h).
		return []uprobeAt{{c.objs.PyTaskInit, false, a.Init, 0}, {c.objs.PyTaskDealloc, false, a.Dealloc, 0},
			{c.objs.PyTaskStepExit, true, a.Step, 0}, {c.objs.PyTaskStepExit, true, a.Wakeup, 0},
			{c.objs.PyTaskStepEnter, false, a.Step, 0}, {c.objs.PyTaskWakeup, false, a.Wakeup, 0}}, err
	})
}
