//go:build linux

package doctor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	zebpf "github.com/zerotrace/zerotrace/collector/ebpf"
)

// mapTypes are the map types the capture creates, with the kernel that
// brought each.
var mapTypes = []struct {
	t           ebpf.MapType
	name, since string
}{
	{ebpf.TaskStorage, "task storage", "5.11"},
	{ebpf.RingBuf, "ring buffer", "5.8"},
	{ebpf.LRUHash, "LRU hash", "4.10"},
	{ebpf.PerCPUArray, "per-CPU array", "4.6"},
}

// helpers are the helpers the capture's programs call that a kernel may
// lack, by the program type that calls them.
var helpers = []struct {
	pt          ebpf.ProgramType
	fn          asm.BuiltinFunc
	name, since string
}{
	{ebpf.TracePoint, asm.FnTaskStorageGet, "bpf_task_storage_get", "5.12"},
	{ebpf.TracePoint, asm.FnRingbufOutput, "bpf_ringbuf_output", "5.8"},
	{ebpf.TracePoint, asm.FnGetCurrentTaskBtf, "bpf_get_current_task_btf", "5.11"},
	{ebpf.TracePoint, asm.FnFindVma, "bpf_find_vma", "5.17"},
	{ebpf.Kprobe, asm.FnGetAttachCookie, "bpf_get_attach_cookie", "5.15"},
	{ebpf.Kprobe, asm.FnTaskPtRegs, "bpf_task_pt_regs", "5.15"},
}

// probeResult turns a feature probe's answer into a check.
func probeResult(name string, err error, since string) Check {
	switch {
	case err == nil:
		return ok(name, "supported")
	case errors.Is(err, ebpf.ErrNotSupported):
		return missing(name, "not supported by this kernel (Linux "+since+" has it)", oldKernel)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return unknown(name, "not permitted to probe (see capabilities)")
	}
	return unknown(name, err.Error())
}

// featureChecks probes each map type and helper the capture uses.
func featureChecks(on bool) []Check {
	var out []Check
	for _, m := range mapTypes {
		name := "bpf map " + m.name
		if !on {
			out = append(out, unused(name, "eBPF capture disabled (ebpf.enabled: false)"))
			continue
		}
		out = append(out, probeResult(name, features.HaveMapType(m.t), m.since))
	}
	for _, h := range helpers {
		name := fmt.Sprintf("bpf helper %s (%s programs)", h.name, strings.ToLower(h.pt.String()))
		if !on {
			out = append(out, unused(name, "eBPF capture disabled (ebpf.enabled: false)"))
			continue
		}
		out = append(out, probeResult(name, features.HaveProgramHelper(h.pt, h.fn), h.since))
	}
	return out
}

// programChecks loads the capture's own programs and attaches each kind
// once (ebpf.Probe): the verifier's verdict and every attach type, then
// the attach types the collector does not use.
func programChecks(on bool) []Check {
	names := []string{"programs load", "attach tracepoint syscalls:*", "attach tp_btf sched:sched_waking",
		"attach uprobe", "attach uretprobe", "ring buffer read"}
	var out []Check
	if !on {
		for _, n := range names {
			out = append(out, unused(n, "eBPF capture disabled (ebpf.enabled: false)"))
		}
		return append(out, unusedAttachTypes()...)
	}
	spec, err := zebpf.LoadSocket()
	if err != nil {
		return append(out, missing(names[0], err.Error(), noBPF))
	}
	r := zebpf.Probe()
	if r.Load != nil {
		out = append(out, missing(names[0], r.Load.Error(), noBPF))
		for _, n := range names[1:] {
			out = append(out, unknown(n, "not attached: the programs did not load"))
		}
		return append(out, unusedAttachTypes()...)
	}
	out = append(out, ok(names[0], fmt.Sprintf("%d programs and %d maps loaded in %s: the verifier accepted every one",
		len(spec.Programs), len(spec.Maps), r.LoadTime.Round(time.Millisecond))))
	if r.TracepointErr != nil {
		out = append(out, missing(names[1], fmt.Sprintf("%d of %d attached; %v", r.Tracepoints, r.TracepointsWanted, r.TracepointErr),
			"no eBPF capture: the collector needs every syscall tracepoint"))
	} else {
		out = append(out, ok(names[1], fmt.Sprintf("%d of %d attached (read, write, send, recv families, accept, connect, close, futex)",
			r.Tracepoints, r.TracepointsWanted)))
	}
	out = append(out, attachResult(names[2], r.TpBTF, "attached (handoffs to worker threads)",
		"calls a pool worker makes for a request are linked by containment only, not by the handoff"))
	out = append(out, attachResult(names[3], r.Uprobe, "attached to a function of this executable, as the collector's are to Go's runtime.send and CPython's SimpleQueue",
		"Go goroutine and CPython work-queue handoffs are not followed"))
	out = append(out, attachResult(names[4], r.Uretprobe, "attached to a function of this executable, as the collector's is to CPython's SimpleQueue.get",
		"CPython work-queue handoffs are not followed"))
	if r.Ringbuf != nil {
		out = append(out, missing(names[5], r.Ringbuf.Error(), "no eBPF capture: events cannot be read"))
	} else {
		out = append(out, ok(names[5], "opened"))
	}
	return append(out, unusedAttachTypes()...)
}

func attachResult(name string, err error, detail, cost string) Check {
	if err != nil {
		return degraded(name, err.Error(), cost)
	}
	return ok(name, detail)
}

// unusedAttachTypes: what the collector does without, whatever this
// kernel offers.
func unusedAttachTypes() []Check {
	return []Check{
		unused("attach fentry/fexit", "not used: the collector works from tracepoints, tp_btf and uprobes"),
		unused("attach kprobe", "not used: the collector works from tracepoints, tp_btf and uprobes"),
	}
}
