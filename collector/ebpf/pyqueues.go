//go:build linux

package ebpf

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/zerotrace/zerotrace/collector/cpython"
)

// pyTracker attaches the work-queue uprobes (bpf/socket/pyqueue.h) to each
// CPython _queue module a traced process has loaded, once per file: a
// uprobe on a shared object fires in every process that maps it. A Python
// process that has not imported the module yet at its first event is looked
// at again, a few times, as its later events come.
type pyTracker struct {
	queue    chan uint32
	attached map[exeID]error
	retry    map[uint32]pyRetry // Python processes without the module yet

	mu       sync.Mutex
	followed map[uint32]bool // processes whose work queues are followed
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

// trackPy attaches the uprobes to the _queue module pid has mapped; a
// Python process without one is looked at again later.
func (c *Capture) trackPy(pid uint32, tries int) {
	dir := filepath.Join("/proc", strconv.Itoa(int(pid)))
	mod, err := queueModule(filepath.Join(dir, "maps"))
	if err != nil || mod == "" {
		exe := exePath(filepath.Join(dir, "exe"))
		if err == nil && strings.HasPrefix(filepath.Base(exe), "python") && tries < pyRetries && len(c.pys.retry) < 4096 {
			c.pys.retry[pid] = pyRetry{time.Now().Add(pyRetryEvery), tries + 1}
		}
		return
	}
	err, first := attachOnce(c.pys.attached, filepath.Join(dir, "root", mod), c.attachQueue)
	switch {
	case first && err != nil:
		c.opt.Logger.Info("CPython work queues not followed; pool workers' calls fall back to wakes (claims)",
			"pid", pid, "module", mod, "err", err)
	case first:
		c.opt.Logger.Debug("CPython work queues followed", "pid", pid, "module", mod)
	}
	if err == nil {
		c.pys.mu.Lock()
		if c.pys.followed == nil || len(c.pys.followed) > 65536 {
			c.pys.followed = map[uint32]bool{}
		}
		c.pys.followed[pid] = true
		c.pys.mu.Unlock()
	}
}

// queueModule returns the path of the _queue extension module mapped in
// the process whose maps file is at maps, or "".
func queueModule(maps string) (string, error) {
	f, err := os.Open(maps)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := line[i:]
		if base := filepath.Base(path); strings.HasPrefix(base, "_queue.") && strings.HasSuffix(base, ".so") {
			return path, nil
		}
	}
	return "", sc.Err()
}

// attachQueue attaches the put, get and get-return uprobes to the module
// at path.
func (c *Capture) attachQueue(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	q, err := cpython.FindQueue(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("finding SimpleQueue's methods: %w", err)
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return fmt.Errorf("opening module: %w", err)
	}
	type probe struct {
		prog *ebpf.Program
		ret  bool
		opt  link.UprobeOptions
	}
	var probes []probe
	for _, m := range q.Puts() {
		item, _ := m.Item() // FindQueue checked it
		probes = append(probes, probe{c.objs.PyQueuePut, false, link.UprobeOptions{Address: m.Offset, Cookie: uint64(item)}})
	}
	for _, m := range q.Gets() {
		probes = append(probes, probe{c.objs.PyQueueGet, false, link.UprobeOptions{Address: m.Offset}},
			probe{c.objs.PyQueueGot, true, link.UprobeOptions{Address: m.Offset}})
	}
	var ls []link.Link
	for _, p := range probes {
		attach := ex.Uprobe
		if p.ret {
			attach = ex.Uretprobe
		}
		l, err := attach("", p.prog, &p.opt)
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
