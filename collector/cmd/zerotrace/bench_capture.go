//go:build linux

package main

// zerotrace bench capture: what the eBPF capture costs the traced apps and
// the collector, printed as "name: value unit  (goal …; peer …)" lines, each
// figure the median of -rounds interleaved untraced/traced rounds (the order
// alternates per round, the collector is started and stopped each round):
//
//   - the syscall loop: HTTP-looking writes/reads over a blocking loopback
//     TCP connection, ns per syscall untraced and traced, and the added ns;
//   - the BPF programs' own run time (kernel BPF stats, run_time_ns/run_cnt
//     of the collector's programs, enter+exit per syscall) during the traced
//     syscall loop (L7 sockets) and during the traced bulk stream (non-L7);
//   - a bulk TCP stream (-bulk-mib of non-L7 bytes through a loopback
//     connection) MB/s untraced and traced, and their ratio;
//   - nginx + wrk (keep-alive, small responses) requests/s untraced, traced
//     and their ratio;
//   - the collector's CPU per 10k spans/s counted from the spans it wrote
//     (zerotrace_spans_total on its /metrics), its peak RSS, and the ring
//     buffer and packet drops it counted.
//
// The collector is this same binary's `collect` subcommand run as a child
// process (extra arguments via -collect-args), so its CPU and RSS are
// measured from /proc and its BPF programs found through its fds.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

func init() {
	register(command{
		name:    "bench capture",
		summary: "capture overhead: ns per traced syscall, BPF run time, bulk TCP and nginx+wrk traced/untraced, collector CPU, RSS and drops",
		run:     runBenchCapture,
	})
}

type benchCaptureConfig struct {
	quick       bool
	iters       int
	rounds      int
	bulkMiB     int
	wrkDuration time.Duration
	wrkConns    int
	wrkThreads  int
	collectArgs string
	warmup      time.Duration
}

func runBenchCapture(args []string) int {
	var c benchCaptureConfig
	fs := flag.NewFlagSet("bench capture", flag.ContinueOnError)
	fs.BoolVar(&c.quick, "quick", false, "CI mode: smaller loops, 2 s wrk runs (still -rounds rounds)")
	fs.IntVar(&c.iters, "iters", 100000, "request/response round trips per syscall loop (4 syscalls each)")
	fs.IntVar(&c.rounds, "rounds", 5, "interleaved untraced/traced rounds (medians are reported; at least 5)")
	fs.IntVar(&c.bulkMiB, "bulk-mib", 512, "MiB sent through the bulk TCP stream per run")
	fs.DurationVar(&c.wrkDuration, "wrk-duration", 5*time.Second, "duration of each wrk run")
	fs.IntVar(&c.wrkConns, "wrk-connections", 16, "wrk keep-alive connections")
	fs.IntVar(&c.wrkThreads, "wrk-threads", 1, "wrk threads")
	fs.StringVar(&c.collectArgs, "collect-args", "", "extra arguments for `zerotrace collect` (space separated)")
	fs.DurationVar(&c.warmup, "collect-warmup", 3*time.Second, "time for the collector to attach before measuring")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.quick {
		c.iters, c.bulkMiB, c.wrkDuration, c.warmup = 20000, 256, 2*time.Second, 2*time.Second
	}
	if c.rounds < 5 {
		fmt.Fprintln(os.Stderr, "bench capture: -rounds must be at least 5")
		return 2
	}
	if err := benchCapture(c); err != nil {
		slog.Error("bench capture", "err", err)
		return 1
	}
	return 0
}

// captureRound holds one round's measurements; traced fields are 0 when the
// collector is not in this binary.
type captureRound struct {
	loopBase, loopTraced         float64 // ns per syscall
	loopEmpty                    float64 // ns per syscall with empty programs on the read/write tracepoints
	bpfEmpty                     float64 // run-time statistics' ns per call of those empty programs
	bulkCPUEmpty                 float64 // CPU seconds of the bulk stream's threads with those empty programs
	bulkSyscalls                 float64 // read/write syscalls of one bulk stream (from the programs' run counts)
	bulkBase, bulkTraced         float64 // MB/s
	bulkCPUBase, bulkCPUTraced   float64 // CPU seconds of the stream's two threads
	rpsApartBase, rpsApartTraced float64 // requests/s, nginx and wrk on one CPU, the collector on the other
	rpsBase, rpsTraced           float64 // requests/s
	bpfL7, bpfNonL7              float64 // BPF ns per syscall (enter+exit)
	bpfOther                     map[string]float64
	bpfL7Prog, bpfNonL7Prog      map[string]float64 // ns per call of each read/write-family program, loop and bulk phases
	cpuPer10k                    float64            // collector cores per 10k spans/s
	spansPerS                    float64
	rss                          float64 // MB
	ringDrops, pktDrops          float64
	dropsLoop, dropsBulk         float64 // ring-buffer drops during the syscall loop and the bulk stream
	pktSeen                      bool
	events                       float64
}

func benchCapture(c benchCaptureConfig) error {
	tmp, err := os.MkdirTemp("", "zt-bench-capture-")
	if err != nil {
		return fmt.Errorf("creating temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	if !haveCollect() {
		fmt.Println("# `zerotrace collect` is not in this binary: traced figures are n/a")
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("# load average before: %s", la)
	}
	fmt.Printf("# %d rounds, %d CPUs, syscall loop %d round trips, bulk %d MiB, wrk %s x %d connections\n",
		c.rounds, runtime.NumCPU(), c.iters, c.bulkMiB, c.wrkDuration, c.wrkConns)

	nginx, err := startBenchNginx(tmp)
	if err != nil {
		return err
	}
	defer nginx.stop()
	if runtime.NumCPU() < 2 {
		fmt.Println("# one CPU: the nginx_wrk_apart figures are n/a")
	}

	var rounds []captureRound
	for i := range c.rounds {
		var r captureRound
		untraced := func() error { return benchUntraced(c, nginx, &r) }
		traced := func() error { return benchTraced(c, tmp, i, nginx, &r) }
		steps := []func() error{untraced, traced}
		if !haveCollect() {
			steps = steps[:1]
		} else if i%2 == 1 {
			steps[0], steps[1] = traced, untraced
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return fmt.Errorf("round %d: %w", i+1, err)
			}
		}
		fmt.Printf("# round %d: loop %.0f/%.0f ns (empty programs %.0f), bulk %.0f/%.0f MB/s %.0f/%.0f ms CPU, wrk %.0f/%.0f req/s (apart %.0f/%.0f), bpf %.0f/%.0f ns, %.3f core per 10k spans/s\n",
			i+1, r.loopBase, r.loopTraced, r.loopEmpty, r.bulkBase, r.bulkTraced, r.bulkCPUBase*1e3, r.bulkCPUTraced*1e3,
			r.rpsBase, r.rpsTraced, r.rpsApartBase, r.rpsApartTraced, r.bpfL7, r.bpfNonL7, r.cpuPer10k)
		rounds = append(rounds, r)
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("# load average after: %s", la)
	}
	med := func(f func(r captureRound) float64) float64 {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = f(r)
		}
		return medianFloat(v)
	}
	const peerSyscall = "DeepFlow publishes +0.3–0.9 µs per traced syscall"
	fmt.Printf("syscall_loop_untraced: %.0f ns/syscall\n", med(func(r captureRound) float64 { return r.loopBase }))
	fmt.Printf("bulk_tcp_untraced: %.0f MB/s\n", med(func(r captureRound) float64 { return r.bulkBase }))
	fmt.Printf("nginx_wrk_untraced: %.0f requests/s\n", med(func(r captureRound) float64 { return r.rpsBase }))
	fmt.Printf("nginx_wrk_apart_untraced: %.0f requests/s  (nginx and wrk on CPU 0 only)\n", med(func(r captureRound) float64 { return r.rpsApartBase }))
	if !haveCollect() {
		fmt.Println("syscall_added: n/a ns/syscall  (goal ≤ 250; " + peerSyscall + ")")
		fmt.Println("nginx_wrk_ratio: n/a  (goal ≥ 0.90; DeepFlow publishes 0.61 worst case)")
		return nil
	}
	fmt.Printf("syscall_loop_traced: %.0f ns/syscall\n", med(func(r captureRound) float64 { return r.loopTraced }))
	fmt.Printf("syscall_tracepoint_floor: %.0f ns/syscall  (empty programs on the read/write tracepoints: what any tracer of them pays here; no goal; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.loopEmpty - r.loopBase }))
	fmt.Printf("syscall_added: %.0f ns/syscall  (goal ≤ 250; %s)\n", med(func(r captureRound) float64 { return r.loopTraced - r.loopBase }), peerSyscall)
	fmt.Printf("bpf_ns_per_l7_syscall: %.0f ns  (goal ≤ 250; %s)\n", med(func(r captureRound) float64 { return r.bpfL7 }), peerSyscall)
	fmt.Printf("bpf_ns_per_nonl7_syscall: %.0f ns  (goal ≤ 50; DeepFlow: no figure published)\n", med(func(r captureRound) float64 { return r.bpfNonL7 }))
	fmt.Printf("bpf_ns_per_call_empty_program: %.0f ns  (what run-time statistics count for a program that does nothing, on the same tracepoints: every bpf_ns figure includes it once per program, twice per syscall; no goal; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.bpfEmpty }))
	perProgram := func(prefix string, field func(r captureRound) map[string]float64) {
		var names []string
		for _, r := range rounds {
			for name := range field(r) {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Printf("%s%s: %.0f ns  (no goal set; DeepFlow: no figure published)\n", prefix, name, med(func(r captureRound) float64 { return field(r)[name] }))
		}
	}
	perProgram("bpf_ns_per_call_l7_", func(r captureRound) map[string]float64 { return r.bpfL7Prog })
	perProgram("bpf_ns_per_call_nonl7_", func(r captureRound) map[string]float64 { return r.bpfNonL7Prog })
	perProgram("bpf_ns_per_call_", func(r captureRound) map[string]float64 { return r.bpfOther })
	fmt.Printf("bulk_tcp_traced: %.0f MB/s\n", med(func(r captureRound) float64 { return r.bulkTraced }))
	fmt.Printf("bulk_tcp_ratio: %.3f  (goal ≥ 0.97; DeepFlow: no figure published)\n", med(func(r captureRound) float64 { return r.bulkTraced / r.bulkBase }))
	fmt.Printf("bulk_tcp_cpu_untraced: %.0f ms per %d MiB  (the sending and receiving threads' user+system CPU)\n", med(func(r captureRound) float64 { return r.bulkCPUBase * 1e3 }), c.bulkMiB)
	fmt.Printf("bulk_tcp_cpu_traced: %.0f ms per %d MiB\n", med(func(r captureRound) float64 { return r.bulkCPUTraced * 1e3 }), c.bulkMiB)
	fmt.Printf("bulk_tcp_cpu_ratio: %.3f  (untraced/traced CPU for the same bytes: bytes per CPU second traced/untraced; goal ≥ 0.97; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.bulkCPUBase / r.bulkCPUTraced }))
	fmt.Printf("bulk_tcp_cpu_ratio_empty_programs: %.3f  (the same with empty programs on the read/write tracepoints instead of the collector: the floor; no goal; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.bulkCPUBase / r.bulkCPUEmpty }))
	fmt.Printf("bulk_tcp_syscalls: %.0f reads and writes per %d MiB  (no goal; DeepFlow: no figure published)\n", med(func(r captureRound) float64 { return r.bulkSyscalls }), c.bulkMiB)
	fmt.Printf("nginx_wrk_traced: %.0f requests/s\n", med(func(r captureRound) float64 { return r.rpsTraced }))
	fmt.Printf("nginx_wrk_ratio: %.3f  (goal ≥ 0.90; DeepFlow publishes 0.61 worst case)\n", med(func(r captureRound) float64 { return r.rpsTraced / r.rpsBase }))
	fmt.Printf("nginx_wrk_apart_traced: %.0f requests/s  (nginx and wrk on CPU 0, the collector on CPU 1)\n", med(func(r captureRound) float64 { return r.rpsApartTraced }))
	fmt.Printf("nginx_wrk_apart_ratio: %.3f  (the capture's cost inside the apps' own syscalls, without the collector on their cores; goal ≥ 0.90; DeepFlow publishes 0.61 worst case)\n",
		med(func(r captureRound) float64 { return r.rpsApartTraced / r.rpsApartBase }))
	fmt.Printf("collector_cpu_per_10k_spans_s: %.3f core at %.0f spans/s written  (goal ≤ 0.10; DeepFlow: no per-span figure published, agent limit 1 core by default)\n",
		med(func(r captureRound) float64 { return r.cpuPer10k }), med(func(r captureRound) float64 { return r.spansPerS }))
	fmt.Printf("collector_peak_rss: %.1f MB  (goal ≤ 300; DeepFlow: agent limit 768 MB by default)\n", med(func(r captureRound) float64 { return r.rss }))
	fmt.Printf("ringbuf_drops: %.0f per round of %.0f events (syscall loop %.0f, bulk stream %.0f)  (goal 0; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.ringDrops }), med(func(r captureRound) float64 { return r.events }),
		med(func(r captureRound) float64 { return r.dropsLoop }), med(func(r captureRound) float64 { return r.dropsBulk }))
	if rounds[0].pktSeen {
		fmt.Printf("packet_drops: %.0f per round  (goal 0; DeepFlow: no figure published)\n", med(func(r captureRound) float64 { return r.pktDrops }))
	} else {
		fmt.Println("packet_drops: n/a (no packet interfaces in -collect-args)  (goal 0)")
	}
	return nil
}

// haveCollect reports whether `zerotrace collect` is in this binary.
func haveCollect() bool { _, ok := commands["collect"]; return ok }

// withStats runs f with the kernel's BPF run-time statistics on (as
// kernel.bpf_stats_enabled=1). They time every run of every program with
// two clock reads, which the traced apps pay too, so only the bpf_ns
// figures are measured with them on.
func withStats(f func() error) error {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enabling BPF run-time stats: %w", err)
	}
	defer stats.Close()
	return f()
}

func medianFloat(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchUntraced(c benchCaptureConfig, nginx benchNginx, r *captureRound) error {
	var err error
	if r.loopBase, err = syscallLoop(c.iters); err != nil {
		return err
	}
	if r.loopEmpty, r.bulkCPUEmpty, r.bpfEmpty, err = emptyPrograms(c, haveCollect()); err != nil {
		return err
	}
	var cpu time.Duration
	if r.bulkBase, cpu, err = bulkStream(c.bulkMiB); err != nil {
		return err
	}
	r.bulkCPUBase = cpu.Seconds()
	if r.rpsBase, err = runWrk(c, nginx.addr, false); err != nil {
		return err
	}
	r.rpsApartBase, err = wrkApart(c, nginx, 0)
	return err
}

// wrkApart runs wrk with nginx and wrk on CPU 0 only (and the collector,
// pid ≠ 0, on CPU 1), then gives them all CPUs back; 0 with one CPU.
func wrkApart(c benchCaptureConfig, nginx benchNginx, collector int) (float64, error) {
	if runtime.NumCPU() < 2 {
		return 0, nil
	}
	all := make([]int, runtime.NumCPU())
	for i := range all {
		all[i] = i
	}
	defer pinThreads(nginx.pid, all...)
	if err := pinThreads(nginx.pid, 0); err != nil {
		return 0, err
	}
	if collector != 0 {
		defer pinThreads(collector, all...)
		if err := pinThreads(collector, 1); err != nil {
			return 0, err
		}
	}
	return runWrk(c, nginx.addr, true)
}

// pinThreads sets the CPU affinity of every thread of pid; threads it
// creates later inherit it. Twice, for threads created meanwhile.
func pinThreads(pid int, cpus ...int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return fmt.Errorf("listing the threads of %d: %w", pid, err)
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				unix.SchedSetaffinity(tid, &set) // a thread that just ended is no error
			}
		}
	}
	return nil
}

// emptyPrograms runs the syscall loop and the bulk stream with a program
// that does nothing attached to the read and write syscall tracepoints: what
// the kernel charges any tracer of these tracepoints per syscall before its
// program does anything (the floor of syscall_added and of the bulk
// stream's CPU). With stats, it runs the loop once more with run-time
// statistics on and returns the run time they count per call of that empty
// program: the floor of every bpf_ns figure.
func emptyPrograms(c benchCaptureConfig, stats bool) (loop, bulkCPU, perCall float64, err error) {
	iters := c.iters
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "zt_empty", Type: ebpf.TracePoint, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("loading an empty program: %w", err)
	}
	defer prog.Close()
	for _, tp := range []string{"sys_enter_write", "sys_exit_write", "sys_enter_read", "sys_exit_read"} {
		l, err := link.Tracepoint("syscalls", tp, prog, nil)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("attaching an empty program to %s: %w", tp, err)
		}
		defer l.Close()
	}
	if loop, err = syscallLoop(iters); err != nil {
		return 0, 0, 0, err
	}
	_, cpu, err := bulkStream(c.bulkMiB)
	if err != nil {
		return 0, 0, 0, err
	}
	if !stats {
		return loop, cpu.Seconds(), 0, nil
	}
	st0, err := prog.Stats()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("reading the empty program's stats: %w", err)
	}
	err = withStats(func() error { _, err := syscallLoop(iters); return err })
	if err != nil {
		return 0, 0, 0, err
	}
	if st, err := prog.Stats(); err == nil && st.RunCount > st0.RunCount {
		perCall = float64((st.Runtime - st0.Runtime).Nanoseconds()) / float64(st.RunCount-st0.RunCount)
	}
	return loop, cpu.Seconds(), perCall, nil
}

// ioProgram tells the read/write-family syscall programs from the others
// (lifecycle, handoff, goroutine); enter reports whether it is an entry.
func ioProgram(name string) (io, enter bool) {
	for _, s := range []string{"write", "read", "writev", "readv", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg"} {
		if name == "enter_"+s {
			return true, true
		}
		if name == "exit_"+s {
			return true, false
		}
	}
	return false, false
}

// bpfPerSyscall is the BPF time (enter+exit programs) per read/write-family
// syscall between two snapshots.
func bpfPerSyscall(a, b map[string]*ebpf.ProgramStats) float64 {
	var ns, calls float64
	for name, sb := range b {
		io, enter := ioProgram(name)
		sa := a[name]
		if !io || sa == nil {
			continue
		}
		ns += float64(sb.Runtime - sa.Runtime)
		if enter {
			calls += float64(sb.RunCount - sa.RunCount)
		}
	}
	if calls == 0 {
		return 0
	}
	return ns / calls
}

// bpfPerCall is each program's BPF ns per call between two snapshots: the
// read/write-family programs (io) or the others, only programs that ran.
func bpfPerCall(a, b map[string]*ebpf.ProgramStats, io bool) map[string]float64 {
	out := map[string]float64{}
	for name, sb := range b {
		if isIO, _ := ioProgram(name); isIO != io {
			continue
		}
		if sa := a[name]; sa != nil && sb.RunCount > sa.RunCount {
			out[name] = float64(sb.Runtime-sa.Runtime) / float64(sb.RunCount-sa.RunCount)
		}
	}
	return out
}

func benchTraced(c benchCaptureConfig, dir string, round int, nginx benchNginx, r *captureRound) error {
	col, err := startCollector(c, filepath.Join(dir, fmt.Sprintf("round%d", round)))
	if err != nil {
		return err
	}
	defer col.stop()
	// What the apps get done, run-time statistics off.
	ma, err := col.metrics()
	if err != nil {
		return err
	}
	if r.loopTraced, err = syscallLoop(c.iters); err != nil {
		return err
	}
	col.drain() // the loop's backlog is not the bulk stream's cost
	mb, err := col.metrics()
	if err != nil {
		return err
	}
	var bulkCPU time.Duration
	if r.bulkTraced, bulkCPU, err = bulkStream(c.bulkMiB); err != nil {
		return err
	}
	r.bulkCPUTraced = bulkCPU.Seconds()
	col.drain()
	m0, err := col.metrics()
	if err != nil {
		return err
	}
	const drops = "zerotrace_ebpf_drop_ringbuf_total"
	r.dropsLoop, r.dropsBulk = mb[drops]-ma[drops], m0[drops]-mb[drops]
	cpu0, t0 := col.cpu(), time.Now()
	if r.rpsTraced, err = runWrk(c, nginx.addr, false); err != nil {
		return err
	}
	time.Sleep(time.Second) // spans of the last requests
	cpu, secs := (col.cpu() - cpu0).Seconds(), time.Since(t0).Seconds()
	m1, err := col.metrics()
	if err != nil {
		return err
	}
	spans := m1["zerotrace_spans_total"] - m0["zerotrace_spans_total"]
	if spans <= 0 {
		return errors.New("the collector wrote no spans during the wrk run")
	}
	r.spansPerS = spans / secs
	r.cpuPer10k = cpu / secs / (r.spansPerS / 10000)
	r.ringDrops, r.events = m1["zerotrace_ebpf_drop_ringbuf_total"], m1["zerotrace_ebpf_events_total"]
	r.pktDrops, r.pktSeen = m1["zerotrace_packet_drops_total"], hasMetric(m1, "zerotrace_packet_drops_total")
	col.drain()
	if r.rpsApartTraced, err = wrkApart(c, nginx, col.cmd.Process.Pid); err != nil {
		return err
	}
	col.drain()
	// The programs' own run time: the loop and the bulk stream again, with
	// run-time statistics on.
	err = withStats(func() error {
		s0, err := col.bpfStats()
		if err != nil {
			return err
		}
		if _, err := syscallLoop(c.iters); err != nil {
			return err
		}
		col.drain()
		s1, _ := col.bpfStats()
		if _, _, err := bulkStream(c.bulkMiB); err != nil {
			return err
		}
		s2, _ := col.bpfStats()
		r.bpfL7, r.bpfNonL7 = bpfPerSyscall(s0, s1), bpfPerSyscall(s1, s2)
		r.bpfL7Prog, r.bpfNonL7Prog = bpfPerCall(s0, s1, true), bpfPerCall(s1, s2, true)
		r.bpfOther = bpfPerCall(s0, s2, false)
		for name, st := range s2 {
			if io, enter := ioProgram(name); io && enter && s1[name] != nil {
				r.bulkSyscalls += float64(st.RunCount - s1[name].RunCount)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.rss = float64(col.peakRSS()) / (1 << 20)
	return col.alive()
}

func hasMetric(m map[string]float64, name string) bool { _, ok := m[name]; return ok }

// bulkStream sends mib MiB of non-L7 bytes through a loopback TCP
// connection (64 KiB blocking writes and reads, one OS thread each, both on
// CPU 0) and returns its MB/s and the CPU time (user + system) its two
// threads used, which is where the capture's programs run. On one CPU the
// two threads take turns the same way every run; left free (or one per
// CPU), their CPU for the same bytes varied by ±20% from run to run, more
// than what the capture adds.
func bulkStream(mib int) (mbps float64, cpu time.Duration, err error) {
	cl, sv, err := loopbackPair()
	if err != nil {
		return 0, 0, fmt.Errorf("bulk: %w", err)
	}
	defer unix.Close(cl)
	total := int64(mib) << 20
	type result struct {
		cpu time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer pinSelf(0)()
		defer unix.Close(sv)
		c0 := threadCPU()
		buf := make([]byte, 64<<10)
		var got int64
		for got < total {
			n, err := unix.Read(sv, buf)
			if err != nil || n == 0 {
				done <- result{err: fmt.Errorf("bulk read after %d bytes: %v", got, err)}
				return
			}
			got += int64(n)
		}
		done <- result{cpu: threadCPU() - c0}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer pinSelf(0)()
	// 0xAB at every offset: no L7 protocol starts like that, so a capture
	// that tells L7 from the rest can mark this stream on every round.
	buf := bytes.Repeat([]byte{0xab}, 64<<10)
	start, c0 := time.Now(), threadCPU()
	for sent := int64(0); sent < total; {
		n, err := unix.Write(cl, buf)
		if err != nil {
			return 0, 0, fmt.Errorf("bulk write: %w", err)
		}
		sent += int64(n)
	}
	sender := threadCPU() - c0
	r := <-done
	if r.err != nil {
		return 0, 0, r.err
	}
	return float64(total) / 1e6 / time.Since(start).Seconds(), sender + r.cpu, nil
}

// pinSelf keeps the calling OS thread (locked to its goroutine) on cpu
// until the returned function gives it its former CPUs back.
func pinSelf(cpu int) (restore func()) {
	var was, set unix.CPUSet
	if unix.SchedGetaffinity(0, &was) != nil {
		return func() {}
	}
	set.Set(cpu)
	unix.SchedSetaffinity(0, &set)
	return func() { unix.SchedSetaffinity(0, &was) }
}

// threadCPU is the calling OS thread's user + system CPU time so far.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopbackPair returns the two ends of a new blocking loopback TCP
// connection (client, server), TCP_NODELAY on both.
func loopbackPair() (cl, sv int, err error) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return -1, -1, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		return -1, -1, fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return -1, -1, fmt.Errorf("getsockname: %w", err)
	}
	if cl, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return -1, -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Connect(cl, sa); err != nil {
		unix.Close(cl)
		return -1, -1, fmt.Errorf("connect: %w", err)
	}
	if sv, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC); err != nil {
		unix.Close(cl)
		return -1, -1, fmt.Errorf("accept: %w", err)
	}
	unix.SetsockoptInt(cl, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptInt(sv, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return cl, sv, nil
}

var (
	benchReq  = []byte("GET /bench/syscall HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: zt-bench\r\n\r\n")
	benchResp = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
)

// syscallLoop does iters request/response exchanges over one blocking
// loopback TCP connection (client write, server read, server write, client
// read) and returns the mean ns per syscall.
func syscallLoop(iters int) (float64, error) {
	cl, sv, err := loopbackPair()
	if err != nil {
		return 0, err
	}
	defer unix.Close(cl)
	defer unix.Close(sv)
	buf := make([]byte, 4096)
	readFull := func(fd, n int) error {
		for got := 0; got < n; {
			m, err := unix.Read(fd, buf[:n-got])
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
			if m == 0 {
				return fmt.Errorf("read: unexpected EOF")
			}
			got += m
		}
		return nil
	}
	start := time.Now()
	for range iters {
		if _, err := unix.Write(cl, benchReq); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		if err := readFull(sv, len(benchReq)); err != nil {
			return 0, err
		}
		if _, err := unix.Write(sv, benchResp); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		if err := readFull(cl, len(benchResp)); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(4*iters), nil
}

// benchNginx is the bench's nginx: one process (no master, one worker).
type benchNginx struct {
	addr string
	pid  int
	stop func()
}

// startBenchNginx runs Debian's nginx on a free loopback port under dir.
func startBenchNginx(dir string) (n benchNginx, err error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return n, fmt.Errorf("finding nginx: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return n, fmt.Errorf("picking a port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return n, fmt.Errorf("creating nginx prefix: %w", err)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 10000000;
    server {
        listen %[2]s;
        default_type text/plain;
        location / { return 200 "ok"; }
    }
}
`, prefix, addr)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return n, fmt.Errorf("writing nginx config: %w", err)
	}
	cmd := exec.Command("nginx", "-p", prefix, "-c", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return n, fmt.Errorf("starting nginx: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return benchNginx{addr: addr, pid: cmd.Process.Pid, stop: stop}, nil
		}
		if time.Now().After(deadline) {
			stop()
			return n, fmt.Errorf("nginx not ready on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runWrk runs wrk against addr and returns its Requests/sec; on CPU 0 only
// when cpu0.
func runWrk(c benchCaptureConfig, addr string, cpu0 bool) (float64, error) {
	secs := max(1, int(c.wrkDuration.Round(time.Second).Seconds()))
	args := []string{"wrk", "-t", strconv.Itoa(c.wrkThreads), "-c", strconv.Itoa(c.wrkConns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s", "http://" + addr + "/"}
	if cpu0 {
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("running wrk: %w: %s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Requests/sec:"); ok {
			rps, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("parsing wrk output %q: %w", v, err)
			}
			return rps, nil
		}
	}
	return 0, fmt.Errorf("no Requests/sec in wrk output: %s", out)
}

// collector is `zerotrace collect` as a child process.
type collector struct {
	cmd     *exec.Cmd
	done    chan error
	metrics func() (map[string]float64, error)
}

func startCollector(c benchCaptureConfig, dir string) (*collector, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding own binary: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating collector dir: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("picking a metrics port: %w", err)
	}
	maddr := l.Addr().String()
	l.Close()
	args := append([]string{"collect", "--data-dir", filepath.Join(dir, "data"), "--metrics-addr", maddr}, strings.Fields(c.collectArgs)...)
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir // relative default data dirs land in the temp dir
	logf, err := os.Create(filepath.Join(dir, "collect.log"))
	if err != nil {
		return nil, fmt.Errorf("creating collector log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting collector: %w", err)
	}
	col := &collector{cmd: cmd, done: make(chan error, 1), metrics: func() (map[string]float64, error) { return scrapeMetrics(maddr) }}
	go func() { col.done <- cmd.Wait(); logf.Close() }()
	select {
	case err := <-col.done:
		log, _ := os.ReadFile(filepath.Join(dir, "collect.log"))
		return nil, fmt.Errorf("collector exited during warm-up (%v): %s", err, log)
	case <-time.After(c.warmup):
	}
	return col, nil
}

func (c *collector) alive() error {
	select {
	case err := <-c.done:
		c.done <- err
		return fmt.Errorf("collector exited during the benchmark: %v", err)
	default:
		return nil
	}
}

// cpu is the collector's user+system CPU time so far (/proc/pid/stat).
func (c *collector) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14 utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15 stime
	const hz = 100                           // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// peakRSS is the collector's VmHWM in bytes.
func (c *collector) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stop asks the collector to flush and exit (SIGTERM), then kills it after 10 s.
func (c *collector) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// drain waits (up to 10 s) until the collector has read its ring buffer
// empty, so that one phase's backlog does not load the next one.
func (c *collector) drain() {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		m, err := c.metrics()
		if err != nil || m["zerotrace_ebpf_ringbuf_lag_bytes"] == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the spans of the last events
}

// scrapeMetrics reads a collector's /metrics: each metric's value summed
// over its label sets.
func scrapeMetrics(addr string) (map[string]float64, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("reading the collector's metrics: %w", err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		m[name] += v
	}
	return m, sc.Err()
}

// bpfStats reads the run-time statistics of the collector's BPF programs,
// found through its open file descriptors (fdinfo prog_id), by name.
func (c *collector) bpfStats() (map[string]*ebpf.ProgramStats, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", c.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the collector's fds: %w", err)
	}
	out := map[string]*ebpf.ProgramStats{}
	seen := map[uint64]bool{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			v, ok := strings.CutPrefix(line, "prog_id:")
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil || seen[id] {
				continue
			}
			seen[id] = true
			p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
			if err != nil {
				continue
			}
			info, ierr := p.Info()
			st, serr := p.Stats()
			p.Close()
			if ierr != nil || serr != nil {
				continue
			}
			if prev := out[info.Name]; prev != nil { // the same program attached twice (uprobes)
				st.Runtime += prev.Runtime
				st.RunCount += prev.RunCount
			}
			out[info.Name] = st
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no BPF programs among the collector's fds")
	}
	return out, nil
}
