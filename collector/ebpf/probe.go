//go:build linux

package ebpf

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// ProbeResult is what loading and attaching the capture's programs did
// (Probe).
type ProbeResult struct {
	Load     error         // loading every program and map (the verifier's verdict)
	LoadTime time.Duration // how long loading took
	// Tracepoints the syscall programs attached to, of TracepointsWanted;
	// TracepointErr is the first refusal.
	Tracepoints, TracepointsWanted int
	TracepointErr                  error
	TpBTF                          error // tp_btf/sched_waking (handoff to worker threads)
	Uprobe, Uretprobe              error // a uprobe and a uretprobe on this executable
	Ringbuf                        error // opening the ring buffer for reading
	// Programs are the ids of the programs Probe loaded; none is loaded
	// any more when it returns.
	Programs []ebpf.ProgramID
}

// Probe loads the capture's programs and maps as Start does, attaches each
// kind of program once, opens the ring buffer, and detaches and closes
// everything again: the honest check of whether Start can work here
// (`zerotrace doctor`). The syscall programs see nothing while attached:
// their network-namespace scope is on and empty. Probe mounts nothing
// (Start mounts tracefs when it is missing).
func Probe() ProbeResult {
	all := hooks(Options{TLSDisabled: true}) // every hook some configuration attaches
	r := ProbeResult{TracepointsWanted: len(all)}
	// Tried anyway when the limit stays: a kernel that charges the memory
	// cgroup needs no more (the detection fails without CAP_BPF).
	memlockErr := rlimit.RemoveMemlock()
	if memlockErr != nil {
		memlockErr = fmt.Errorf("removing memlock limit: %w", memlockErr)
	}
	spec, err := LoadSocket()
	if err != nil {
		r.Load = fmt.Errorf("loading BPF spec: %w", err)
		return r
	}
	for name, v := range map[string]any{"payload_cap": uint32(1024), "self_tgid": uint32(os.Getpid()), "scope_enabled": uint8(1)} {
		if err := spec.Variables[name].Set(v); err != nil {
			r.Load = fmt.Errorf("setting %s: %w", name, err)
			return r
		}
	}
	var objs SocketObjects
	start := time.Now()
	err = spec.LoadAndAssign(&objs, nil)
	r.LoadTime = time.Since(start)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// The verifier's last lines say what it refused.
			err = fmt.Errorf("%w (%s)", err, strings.Join(ve.Log[max(len(ve.Log)-3, 0):], "; "))
		}
		r.Load = errors.Join(fmt.Errorf("loading BPF programs: %w", err), memlockErr)
		return r
	}
	defer objs.Close()
	r.Programs = programIDs(&objs.SocketPrograms)
	var links []link.Link
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	for _, tp := range all {
		l, err := link.Tracepoint("syscalls", tp.name, tp.prog(&objs.SocketPrograms), nil)
		if err != nil {
			if r.TracepointErr == nil {
				r.TracepointErr = fmt.Errorf("attaching %s: %w", tp.name, err)
			}
			continue
		}
		r.Tracepoints++
		links = append(links, l)
	}
	if l, err := link.AttachTracing(link.TracingOptions{Program: objs.OnWaking}); err != nil {
		r.TpBTF = err
	} else {
		links = append(links, l)
	}
	r.Uprobe, r.Uretprobe = probeUprobes(&objs, &links)
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		r.Ringbuf = err
	} else {
		rd.Close()
	}
	return r
}

// probeUprobes attaches the Go tracker's program as a uprobe and the
// CPython queue's as a uretprobe on a function of this executable, only
// for this process. The function is found by its address, so a stripped
// binary works as well.
func probeUprobes(objs *SocketObjects, links *[]link.Link) (uprobe, uretprobe error) {
	off, err := fileOffset(reflect.ValueOf(probeTarget).Pointer())
	if err != nil {
		return err, err
	}
	ex, err := link.OpenExecutable("/proc/self/exe")
	if err != nil {
		return err, err
	}
	opt := &link.UprobeOptions{Address: off, PID: os.Getpid()}
	if l, err := ex.Uprobe("", objs.GoRuntimeSend, opt); err != nil {
		uprobe = err
	} else {
		*links = append(*links, l)
	}
	if l, err := ex.Uretprobe("", objs.PyQueueGot, opt); err != nil {
		uretprobe = err
	} else {
		*links = append(*links, l)
	}
	return uprobe, uretprobe
}

// probeTarget is the function Probe's uprobes attach to.
//
//go:noinline
func probeTarget() int { return os.Getpid() }

// fileOffset turns an address of this process's code into an offset in
// its executable, from /proc/self/maps.
func fileOffset(addr uintptr) (uint64, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(fields[2], 16, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil || uint64(addr) < start || uint64(addr) >= end {
			continue
		}
		return uint64(addr) - start + off, nil
	}
	return 0, fmt.Errorf("address %#x is in no mapping of /proc/self/maps", addr)
}

// programIDs lists the ids of the loaded programs in progs (a bpf2go
// programs struct: one *ebpf.Program field each).
func programIDs(progs *SocketPrograms) []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	v := reflect.ValueOf(progs).Elem()
	for i := range v.NumField() {
		p, ok := v.Field(i).Interface().(*ebpf.Program)
		if !ok || p == nil {
			continue
		}
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
