//go:build linux

package main

// zerotrace bench capture: what the eBPF capture costs the traced apps and
// the collector, printed as "name: value unit  (goal …; peer …)" lines, each
// figure the median of -rounds interleaved untraced/traced rounds (the order
// alternates per round, the collector is started and stopped each round):
//
//   - the syscall loop: HTTP-looking writes/reads over a blocking loopback
//     TCP connection, ns per syscall untraced and traced, and the added ns;
//   - the BPF programs' own run time (kernel BPF stats, run_time_ns of the
//     collector's read/write-family programs, enter+exit) per syscall the
//     workload made, counted by the workload itself, during a traced syscall
//     loop (L7 sockets) and a traced bulk stream (non-L7) run again with the
//     statistics on, after the apps' figures were taken without them (they
//     cost the apps two clock reads per program run). The programs run for
//     every read and write on the host, so the run time includes the other
//     processes' too: an upper bound, printed beside how many syscalls the
//     programs ran for;
//   - a bulk TCP stream (-bulk-mib of non-L7 bytes through a loopback
//     connection, both threads on CPU 0) MB/s and CPU untraced and traced,
//     and their ratios, with the floor of empty programs;
//   - nginx + wrk (keep-alive, small responses) requests/s untraced, traced
//     and their ratio, sharing all CPUs and apart (nginx and wrk on CPU 0,
//     the collector on CPU 1);
//   - the collector's CPU per 10k spans/s counted from the spans it wrote
//     (zerotrace_spans_total on its /metrics), its peak RSS, and the ring
//     buffer and packet drops it counted (summed over the rounds).
//
// A figure that cannot be read (a failed BPF statistics read, a metric the
// collector does not export, programs that did not run) fails the bench:
// no line prints a number that was not measured.
//
// The collector is this same binary's `collect` subcommand run as a child
// process (extra arguments via -collect-args), so its CPU and RSS are
// measured from /proc and its BPF programs found through its fds.

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
	bulkSyscalls                 float64 // reads and writes the bulk stream made (counted by it)
	bulkHostIO                   float64 // read/write-family syscalls the programs ran for during it (the whole host)
	loopSyscalls                 float64 // syscalls the stats phase's syscall loop made (counted by it)
	loopHostIO                   float64 // read/write-family syscalls the programs ran for during it (the whole host)
	bulkBase, bulkTraced         float64 // MB/s
	bulkCPUBase, bulkCPUTraced   float64 // CPU seconds of the stream's two threads
	rpsApartBase, rpsApartTraced float64 // requests/s, nginx and wrk on one CPU, the collector on the other
	rpsBase, rpsTraced           float64 // requests/s
	bpfL7, bpfNonL7              float64 // BPF ns per syscall (enter+exit)
	bpfOther                     map[string]float64
	bpfL7Prog, bpfNonL7Prog      map[string]float64 // ns per call of each read/write-family program, loop and bulk phases
	bpfRuntime                   map[string]float64 // ns per call of the asyncio and Node.js uprobes, during their workloads
	cpuPer10k                    float64            // collector cores per 10k spans/s
	spansPerS                    float64
	rss                          float64 // MB
	ringDrops, pktDrops          float64 // the whole round (the collector's counters when it stops)
	ringWakes                    float64 // records that woke the ring's reader, the whole round
	dropsLoop, dropsBulk         float64 // ring-buffer drops during the syscall loop and the bulk stream
	pktSeen                      bool
	events                       float64
	tls                          benchTLSRound // bench_capture_tls.go
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
		progW, progR := r.tls.progs.perCall(r.bpfEmpty)
		fmt.Printf("# round %d tls: SSL_write %.0f/%.0f ns (empty uprobes %.0f, programs %.0f), SSL_read %.0f/%.0f ns (empty uprobes %.0f, programs %.0f), https wrk %.0f/%.0f req/s (empty uprobes %.0f)\n",
			i+1, r.tls.writeBase, r.tls.writeTraced, r.tls.writeEmpty, progW, r.tls.readBase, r.tls.readTraced, r.tls.readEmpty, progR, r.tls.rpsBase, r.tls.rpsTraced, r.tls.rpsEmpty)
		rounds = append(rounds, r)
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("# load average after: %s", la)
	}
	printCapture(c, rounds)
	return nil
}

// printCapture prints the figures: medians over the rounds, drops summed.
func printCapture(c benchCaptureConfig, rounds []captureRound) {
	med := func(f func(r captureRound) float64) float64 {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = f(r)
		}
		return medianFloat(v)
	}
	sum := func(f func(r captureRound) float64) (total float64, each string) {
		var parts []string
		for _, r := range rounds {
			total += f(r)
			parts = append(parts, fmt.Sprintf("%.0f", f(r)))
		}
		return total, strings.Join(parts, ", ")
	}
	const peerSyscall = "DeepFlow publishes +0.3–0.9 µs per traced syscall"
	fmt.Printf("syscall_loop_untraced: %.0f ns/syscall\n", med(func(r captureRound) float64 { return r.loopBase }))
	fmt.Printf("bulk_tcp_untraced: %.0f MB/s\n", med(func(r captureRound) float64 { return r.bulkBase }))
	fmt.Printf("nginx_wrk_untraced: %.0f requests/s\n", med(func(r captureRound) float64 { return r.rpsBase }))
	fmt.Printf("nginx_wrk_apart_untraced: %.0f requests/s  (nginx and wrk on CPU 0 only)\n", med(func(r captureRound) float64 { return r.rpsApartBase }))
	printTLSCapture(rounds)
	if !haveCollect() {
		fmt.Println("syscall_added: n/a ns/syscall  (goal ≤ 250; " + peerSyscall + ")")
		fmt.Println("nginx_wrk_ratio: n/a  (goal ≥ 0.65, issue 29; long-term ≥ 0.90; DeepFlow publishes 0.61 worst case)")
		return
	}
	fmt.Printf("syscall_loop_traced: %.0f ns/syscall\n", med(func(r captureRound) float64 { return r.loopTraced }))
	fmt.Printf("syscall_tracepoint_floor: %.0f ns/syscall  (empty programs on the read/write tracepoints: what any tracer of them pays here; no goal; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.loopEmpty - r.loopBase }))
	fmt.Printf("syscall_added: %.0f ns/syscall  (goal ≤ 250; %s)\n", med(func(r captureRound) float64 { return r.loopTraced - r.loopBase }), peerSyscall)
	fmt.Printf("bpf_ns_per_l7_syscall: %.0f ns  (goal ≤ 450, issue 29; long-term ≤ 250; %s; over the %.0f syscalls of the loop, the programs ran for %.0f on the host meanwhile)\n",
		med(func(r captureRound) float64 { return r.bpfL7 }), peerSyscall,
		med(func(r captureRound) float64 { return r.loopSyscalls }), med(func(r captureRound) float64 { return r.loopHostIO }))
	fmt.Printf("bpf_ns_per_nonl7_syscall: %.0f ns  (goal ≤ 50; DeepFlow: no figure published; over the %.0f reads and writes of the bulk stream, the programs ran for %.0f on the host meanwhile)\n",
		med(func(r captureRound) float64 { return r.bpfNonL7 }),
		med(func(r captureRound) float64 { return r.bulkSyscalls }), med(func(r captureRound) float64 { return r.bulkHostIO }))
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
	perProgram("bpf_ns_per_call_runtime_", func(r captureRound) map[string]float64 { return r.bpfRuntime })
	fmt.Printf("bulk_tcp_traced: %.0f MB/s\n", med(func(r captureRound) float64 { return r.bulkTraced }))
	fmt.Printf("bulk_tcp_ratio: %.3f  (goal ≥ 0.97; DeepFlow: no figure published)\n", med(func(r captureRound) float64 { return r.bulkTraced / r.bulkBase }))
	fmt.Printf("bulk_tcp_cpu_untraced: %.0f ms per %d MiB  (the sending and receiving threads' user+system CPU)\n", med(func(r captureRound) float64 { return r.bulkCPUBase * 1e3 }), c.bulkMiB)
	fmt.Printf("bulk_tcp_cpu_traced: %.0f ms per %d MiB\n", med(func(r captureRound) float64 { return r.bulkCPUTraced * 1e3 }), c.bulkMiB)
	fmt.Printf("bulk_tcp_cpu_ratio: %.3f  (untraced/traced CPU for the same bytes: bytes per CPU second traced/untraced; goal ≥ 0.97; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.bulkCPUBase / r.bulkCPUTraced }))
	fmt.Printf("bulk_tcp_cpu_ratio_empty_programs: %.3f  (the same with empty programs on the read/write tracepoints instead of the collector: the floor; no goal; DeepFlow: no figure published)\n",
		med(func(r captureRound) float64 { return r.bulkCPUBase / r.bulkCPUEmpty }))
	fmt.Printf("bulk_tcp_syscalls: %.0f reads and writes per %d MiB  (counted by the stream; no goal; DeepFlow: no figure published)\n", med(func(r captureRound) float64 { return r.bulkSyscalls }), c.bulkMiB)
	fmt.Printf("nginx_wrk_traced: %.0f requests/s\n", med(func(r captureRound) float64 { return r.rpsTraced }))
	fmt.Printf("nginx_wrk_ratio: %.3f  (goal ≥ 0.65, issue 29; long-term ≥ 0.90; DeepFlow publishes 0.61 worst case)\n", med(func(r captureRound) float64 { return r.rpsTraced / r.rpsBase }))
	fmt.Printf("nginx_wrk_apart_traced: %.0f requests/s  (nginx and wrk on CPU 0, the collector on CPU 1)\n", med(func(r captureRound) float64 { return r.rpsApartTraced }))
	fmt.Printf("nginx_wrk_apart_ratio: %.3f  (the capture's cost inside the apps' own syscalls, without the collector on their cores; goal ≥ 0.90; DeepFlow publishes 0.61 worst case)\n",
		med(func(r captureRound) float64 { return r.rpsApartTraced / r.rpsApartBase }))
	fmt.Printf("collector_cpu_per_10k_spans_s: %.3f core at %.0f spans/s written  (goal ≤ 0.02, issue 29; DeepFlow: no per-span figure published, agent limit 1 core by default)\n",
		med(func(r captureRound) float64 { return r.cpuPer10k }), med(func(r captureRound) float64 { return r.spansPerS }))
	fmt.Printf("collector_peak_rss: %.1f MB  (goal ≤ 300; DeepFlow: agent limit 768 MB by default)\n", med(func(r captureRound) float64 { return r.rss }))
	drops, each := sum(func(r captureRound) float64 { return r.ringDrops })
	events, _ := sum(func(r captureRound) float64 { return r.events })
	loopDrops, _ := sum(func(r captureRound) float64 { return r.dropsLoop })
	bulkDrops, _ := sum(func(r captureRound) float64 { return r.dropsBulk })
	fmt.Printf("ringbuf_drops: %.0f in %d rounds of %.0f events (per round %s; syscall loops %.0f, bulk streams %.0f)  (goal 0; DeepFlow: no figure published)\n",
		drops, len(rounds), events, each, loopDrops, bulkDrops)
	wakes, eachWakes := sum(func(r captureRound) float64 { return r.ringWakes })
	fmt.Printf("ringbuf_wakes: %.0f in %d rounds (per round %s)  (records that woke the ring's reader: bytes past the copy on L7 sockets; the reader polls on its deadline otherwise)\n",
		wakes, len(rounds), eachWakes)
	if rounds[0].pktSeen {
		pkt, each := sum(func(r captureRound) float64 { return r.pktDrops })
		fmt.Printf("packet_drops: %.0f in %d rounds (per round %s)  (goal 0; DeepFlow: no figure published)\n", pkt, len(rounds), each)
	} else {
		fmt.Println("packet_drops: n/a (no packet interfaces in -collect-args)  (goal 0)")
	}
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
	if r.loopBase, _, err = syscallLoop(c.iters); err != nil {
		return err
	}
	if r.loopEmpty, r.bulkCPUEmpty, r.bpfEmpty, err = emptyPrograms(c, haveCollect()); err != nil {
		return err
	}
	var cpu time.Duration
	if r.bulkBase, cpu, _, err = bulkStream(c.bulkMiB); err != nil {
		return err
	}
	r.bulkCPUBase = cpu.Seconds()
	if r.rpsBase, err = runWrk(c, nginx.addr, false); err != nil {
		return err
	}
	if r.rpsApartBase, err = wrkApart(c, nginx, 0); err != nil {
		return err
	}
	return tlsUntraced(c, nginx, &r.tls)
}

// emptyPrograms runs the syscall loop and the bulk stream with a program
// that does nothing attached to the read and write syscall tracepoints: what
// the kernel charges any tracer of these tracepoints per syscall before its
// program does anything (the floor of syscall_added and of the bulk
// stream's CPU). With stats, it runs the loop once more with run-time
// statistics on and returns the run time they count per call of that empty
// program: the floor of every bpf_ns figure.
func emptyPrograms(c benchCaptureConfig, stats bool) (loop, bulkCPU, perCall float64, err error) {
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
	if loop, _, err = syscallLoop(c.iters); err != nil {
		return 0, 0, 0, err
	}
	_, cpu, _, err := bulkStream(c.bulkMiB)
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
	err = withStats(func() error { _, _, err := syscallLoop(c.iters); return err })
	if err != nil {
		return 0, 0, 0, err
	}
	st, err := prog.Stats()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("reading the empty program's stats: %w", err)
	}
	if st.RunCount <= st0.RunCount {
		return 0, 0, 0, errors.New("the empty program's stats counted no run during the syscall loop")
	}
	perCall = float64((st.Runtime - st0.Runtime).Nanoseconds()) / float64(st.RunCount-st0.RunCount)
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

// bpfIO is the BPF time (enter+exit programs) of the read/write-family
// programs between two snapshots, and how many syscalls they ran for (on
// the whole host); it is an error when they ran for fewer syscalls than
// the workload made (statistics off, or the programs not attached).
func bpfIO(a, b map[string]*ebpf.ProgramStats, workload float64) (ns, calls float64, err error) {
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
	if calls < workload || ns <= 0 {
		return 0, 0, fmt.Errorf("the read/write programs ran for %.0f syscalls (%.0f ns), the workload made %.0f", calls, ns, workload)
	}
	return ns, calls, nil
}

// bpfPerCall is each program's BPF ns per call between two snapshots: the
// read/write-family programs (io) or the others, only programs that ran.
func bpfPerCall(a, b map[string]*ebpf.ProgramStats, io bool) map[string]float64 {
	out := map[string]float64{}
	for name := range b {
		if isIO, _ := ioProgram(name); isIO != io {
			continue
		}
		if ns, runs := progRun(a, b, name); runs > 0 {
			out[name] = ns / runs
		}
	}
	return out
}

// progRun is program name's run time (ns) and runs between two snapshots;
// 0, 0 when it did not run in between.
func progRun(a, b map[string]*ebpf.ProgramStats, name string) (ns, runs float64) {
	sa, sb := a[name], b[name]
	if sa == nil || sb == nil || sb.RunCount <= sa.RunCount {
		return 0, 0
	}
	return float64(sb.Runtime - sa.Runtime), float64(sb.RunCount - sa.RunCount)
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
	if r.loopTraced, _, err = syscallLoop(c.iters); err != nil {
		return err
	}
	col.drain() // the loop's backlog is not the bulk stream's cost
	mb, err := col.metrics()
	if err != nil {
		return err
	}
	var bulkCPU time.Duration
	if r.bulkTraced, bulkCPU, _, err = bulkStream(c.bulkMiB); err != nil {
		return err
	}
	r.bulkCPUTraced = bulkCPU.Seconds()
	col.drain()
	m0, err := col.metrics()
	if err != nil {
		return err
	}
	const drops = "zerotrace_ebpf_drop_ringbuf_total"
	da, err1 := metric(ma, drops)
	db, err2 := metric(mb, drops)
	d0, err3 := metric(m0, drops)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	r.dropsLoop, r.dropsBulk = db-da, d0-db
	cpu0, err := col.cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if r.rpsTraced, err = runWrk(c, nginx.addr, false); err != nil {
		return err
	}
	time.Sleep(time.Second) // spans of the last requests
	cpu1, err := col.cpu()
	if err != nil {
		return err
	}
	cpu, secs := (cpu1 - cpu0).Seconds(), time.Since(t0).Seconds()
	m1, err := col.metrics()
	if err != nil {
		return err
	}
	s0, err1 := metric(m0, "zerotrace_spans_total")
	s1, err2 := metric(m1, "zerotrace_spans_total")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if s1 <= s0 {
		return errors.New("the collector wrote no spans during the wrk run")
	}
	if cpu <= 0 {
		return errors.New("the collector's CPU time did not move during the wrk run")
	}
	r.spansPerS = (s1 - s0) / secs
	r.cpuPer10k = cpu / secs / (r.spansPerS / 10000)
	col.drain()
	if r.rpsApartTraced, err = wrkApart(c, nginx, col.cmd.Process.Pid); err != nil {
		return err
	}
	col.drain()
	if err := tlsTraced(c, col, nginx, &r.tls); err != nil {
		return err
	}
	if err := bpfRunTime(c, col, r); err != nil {
		return err
	}
	if err := roundEnd(col, r); err != nil {
		return err
	}
	return col.alive()
}

// bpfRunTime runs the syscall loop and the bulk stream again with run-time
// statistics on and takes the collector's programs' own run time per
// syscall the workload made.
func bpfRunTime(c benchCaptureConfig, col *collector, r *captureRound) error {
	return withStats(func() error {
		s0, err := col.bpfStats()
		if err != nil {
			return err
		}
		_, loopCalls, err := syscallLoop(c.iters)
		if err != nil {
			return err
		}
		col.drain()
		s1, err := col.bpfStats()
		if err != nil {
			return err
		}
		_, _, bulkCalls, err := bulkStream(c.bulkMiB)
		if err != nil {
			return err
		}
		s2, err := col.bpfStats()
		if err != nil {
			return err
		}
		r.loopSyscalls, r.bulkSyscalls = float64(loopCalls), float64(bulkCalls)
		ns, host, err := bpfIO(s0, s1, r.loopSyscalls)
		if err != nil {
			return fmt.Errorf("syscall loop: %w", err)
		}
		r.bpfL7, r.loopHostIO = ns/r.loopSyscalls, host
		if ns, host, err = bpfIO(s1, s2, r.bulkSyscalls); err != nil {
			return fmt.Errorf("bulk stream: %w", err)
		}
		r.bpfNonL7, r.bulkHostIO = ns/r.bulkSyscalls, host
		r.bpfL7Prog, r.bpfNonL7Prog = bpfPerCall(s0, s1, true), bpfPerCall(s1, s2, true)
		r.bpfOther = bpfPerCall(s0, s2, false)
		if err := runtimeWorkloads(); err != nil {
			return err
		}
		s3, err := col.bpfStats()
		if err != nil {
			return err
		}
		r.bpfRuntime = map[string]float64{}
		for name, ns := range bpfPerCall(s2, s3, false) {
			if runtimeProgram(name) {
				r.bpfRuntime[name] = ns
			}
		}
		return nil
	})
}

// roundEnd reads the collector's peak RSS and the round's drops as the
// collector stops measuring.
func roundEnd(col *collector, r *captureRound) error {
	rss, err := col.peakRSS()
	if err != nil {
		return err
	}
	r.rss = float64(rss) / (1 << 20)
	m2, err := col.metrics()
	if err != nil {
		return err
	}
	var errs [3]error
	r.ringDrops, errs[0] = metric(m2, "zerotrace_ebpf_drop_ringbuf_total")
	r.events, errs[1] = metric(m2, "zerotrace_ebpf_events_total")
	if hasMetric(m2, "zerotrace_ebpf_ring_wakes_total") { // older collectors: none
		r.ringWakes, _ = metric(m2, "zerotrace_ebpf_ring_wakes_total")
	}
	if r.pktSeen = hasMetric(m2, "zerotrace_packet_drops_total"); r.pktSeen {
		r.pktDrops, errs[2] = metric(m2, "zerotrace_packet_drops_total")
	}
	return errors.Join(errs[:]...)
}
