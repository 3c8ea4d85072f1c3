//go:build linux

package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/zerotrace/zerotrace/pkg/export"
	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

func init() {
	register(command{name: "bench export", summary: "zerotrace export on a store of generated spans: spans exported per CPU-second, peak memory", run: runBenchExport})
	register(command{name: "bench export-sink", summary: "(used by bench export) an OTLP/gRPC receiver that counts spans", run: runExportSink})
}

func runBenchExport(args []string) int {
	fs := flag.NewFlagSet("bench export", flag.ContinueOnError)
	n := fs.Int("spans", 200_000, "generated spans in the store")
	rounds := fs.Int("rounds", 3, "exports of the whole store; figures are medians")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the export rounds to this file")
	memprofile := fs.String("memprofile", "", "write an allocation profile to this file at the end")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if err := benchExport(*n, *rounds, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench export:", err)
		return 1
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	return 0
}

// benchExport fills a store with generated Bookinfo spans, starts an OTLP
// receiver in a child process (its CPU is not ours), and exports the whole
// store rounds times, each from an empty checkpoint: every span read,
// assembled into its trace, mapped, sent over OTLP/gRPC and recorded. CPU
// is getrusage of this process over the export alone (every thread, the
// Go runtime's included); peak memory is the process's VmHWM, reset before
// each round (/proc/self/clear_refs).
func benchExport(n, rounds int, profile string) error {
	dir, err := os.MkdirTemp("", "zt-bench-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	interval := 5 * time.Millisecond
	fmt.Printf("bench export: filling a store with %d generated Bookinfo spans in %s\n", n, dir)
	from, to, _, written, err := fillStore(filepath.Join(dir, "data"), n, interval)
	if err != nil {
		return err
	}
	sink, addr, err := startSink()
	if err != nil {
		return err
	}
	defer sink()
	setExportGC()      // as zerotrace export runs
	if profile != "" { // the export rounds only
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
	}
	var rates, peaks, peers []float64
	for r := 0; r < rounds; r++ {
		debug.FreeOSMemory()                                  // what filling the store left goes back to the system
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // then VmHWM is reset (Linux ≥ 4.0)
		u0 := rusageSelf()
		cpu, wall, exported, err := exportOnce(filepath.Join(dir, "data"), filepath.Join(dir, fmt.Sprintf("cp-%d", r)), addr, from, to, written)
		if err != nil {
			return err
		}
		if exported != written {
			return fmt.Errorf("round %d: %d of %d spans exported", r, exported, written)
		}
		peak, u := vmHWM(), rusageSelf().minus(u0)
		rates = append(rates, float64(exported)/cpu.Seconds())
		peaks = append(peaks, float64(peak)/(1<<20))
		if profile != "" && r == rounds-1 {
			pprof.StopCPUProfile()
		}
		fmt.Printf("  round %d: %d spans in %.2f s wall, %.2f CPU-s (%.0f spans/CPU-s; user %.2f, system %.2f, %d page faults), peak RSS %.0f MiB\n",
			r+1, exported, wall.Seconds(), cpu.Seconds(), float64(exported)/cpu.Seconds(), u.user.Seconds(), u.sys.Seconds(), u.minflt,
			float64(peak)/(1<<20))
	}
	// Peer: the same spans mapped and sent alone (read beforehand, each as
	// its own one-span trace: no assembly, no checkpoint), over the same
	// receiver.
	peerRate, err := sendOnlyRate(filepath.Join(dir, "data"), addr)
	if err != nil {
		return err
	}
	peers = append(peers, peerRate)
	fmt.Printf("export: %.0f spans/CPU-s  (goal ≥ 100000; median of %d rounds of %d spans: shards read, traces assembled, OTLP mapped, sent over gRPC, checkpoint synced; peer: mapping and sending alone %.0f spans/CPU-s)\n",
		medianFloat(rates), rounds, written, medianFloat(peers))
	fmt.Printf("export_peak_rss: %.0f MiB  (median of %d rounds; the spans of the window held in memory: %d spans)\n",
		medianFloat(peaks), rounds, written)
	return nil
}

// rusage is what getrusage says of this process: user and system CPU,
// minor page faults (memory touched for the first time).
type rusage struct {
	user, sys time.Duration
	minflt    int64
}

func rusageSelf() rusage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return rusage{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), ru.Minflt}
}

func (u rusage) minus(v rusage) rusage {
	return rusage{u.user - v.user, u.sys - v.sys, u.minflt - v.minflt}
}

func vmHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// exportOnce runs an exporter over the store until every span was
// acknowledged, with a clock just after the spans' time.
func exportOnce(data, checkpoint, addr string, from, to int64, total int) (cpu, wall time.Duration, exported int, err error) {
	r, err := store.OpenReader(data)
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.Close()
	cfg := export.Defaults()
	cfg.DataDirs, cfg.Endpoint, cfg.TLS.Insecure, cfg.Checkpoint, cfg.MetricsAddr = []string{data}, addr, true, checkpoint, ""
	cfg.Quiet, cfg.Poll = time.Millisecond, 20*time.Millisecond
	cfg.Window = time.Duration(to-from) + 10*time.Minute
	cfg.Since = cfg.Window
	cfg.QueueSpans = 50000
	e, err := export.New(cfg, export.Source{Reader: r}, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	e.Now = func() time.Time { return time.Unix(0, to).Add(time.Minute + time.Since(start)) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c0 := cpuTime()
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for int(e.Stats.SpansExported.Load()) < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cpu, wall = cpuTime()-c0, time.Since(start)
	if p := os.Getenv("ZT_HEAPPROFILE"); p != "" {
		runtime.GC()
		if f, err := os.Create(p); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	cancel()
	if err := <-done; err != nil {
		return 0, 0, 0, err
	}
	return cpu, wall, int(e.Stats.SpansExported.Load()), nil
}

// startSink runs `zerotrace bench export-sink` and returns its address.
func startSink() (stop func(), addr string, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, "bench", "export-sink")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, "", fmt.Errorf("sink: %w", err)
	}
	return func() { in.Close(); cmd.Wait() }, strings.TrimSpace(line), nil
}

type countSink struct {
	ptraceotlp.UnimplementedGRPCServer
	spans atomic.Int64
}

func (c *countSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	c.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

// runExportSink serves OTLP/gRPC on loopback, prints its address and runs
// until its standard input closes.
func runExportSink(args []string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "export-sink:", err)
		return 1
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	ptraceotlp.RegisterGRPCServer(srv, &countSink{})
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	srv.Stop()
	return 0
}

// sendOnlyRate maps and sends every span of the store in batches of 2000
// with pdata's OTLP/gRPC client, and returns spans per CPU-second of that
// alone.
func sendOnlyRate(data, addr string) (float64, error) {
	r, err := store.OpenReader(data)
	if err != nil {
		return 0, err
	}
	var spans []span.Span
	err = r.Dump(context.Background(), 0, 0, func(s *span.Span) bool { spans = append(spans, *s); return true })
	r.Close()
	if err != nil {
		return 0, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	m := otlp.NewMapper()
	one := &trace.Trace{Parents: []int{-1}}
	c0 := cpuTime()
	for i := range spans {
		one.Spans = spans[i : i+1]
		m.AppendTrace(derivedTID(spans[i].SpanID), one, nil)
		if m.Spans() == 2000 || i == len(spans)-1 {
			if _, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(m.Traces())); err != nil {
				return 0, err
			}
			m.Reset()
		}
	}
	return float64(len(spans)) / (cpuTime() - c0).Seconds(), nil
}

func derivedTID(id uint64) pcommon.TraceID {
	t, _ := otlp.TraceIDOf(trace.DerivedID(id))
	return t
}
