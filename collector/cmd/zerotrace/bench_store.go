//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

func init() {
	register(command{name: "bench store", summary: "store figures on generated Bookinfo spans: ingest, bytes/span, lookup, search, write-to-readable, verify", run: runBenchStore})
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// ingestCPU is what storing the generated spans cost, measured in one run.
type ingestCPU struct {
	process time.Duration // getrusage of the whole process over the run: generating and storing
	gen     time.Duration // the generating thread's own CPU over the same run (RUSAGE_THREAD)
}

// store is the CPU of the writer's work: everything the process did in the
// run but what the generating thread did itself (Badger's background work,
// the Go runtime's and the garbage collector's included).
func (c ingestCPU) store() time.Duration { return c.process - c.gen }

// fillStore writes about n generated Bookinfo spans into dir/<node> the way a
// collector does over time (a batch per second of span time, a seal every
// 2 s), then merges. It returns the spans' time range and the CPU the run
// took. The spans are generated on a thread of their own (locked, so no
// other goroutine runs on it), a second of spans ahead of the writer, which
// stores them on the caller's goroutine.
func fillStore(dir string, n int, interval time.Duration) (from, to int64, cpu ingestCPU, written int, err error) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock time.Time
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: "bench", NoBackground: true,
		Now: func() time.Time { return clock }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, 0, cpu, 0, err
	}
	perSec := int(time.Second / interval)
	chunks := make(chan []span.Span) // unbuffered: the generator fills one buffer while the writer stores the other
	stop := make(chan struct{})
	genCPU := make(chan time.Duration, 1)
	c0 := cpuTime()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := threadCPU()
		defer func() { genCPU <- threadCPU() - t0 }()
		defer close(chunks)
		g := spangen.New(spangen.Config{Seed: 1, Start: start, Interval: interval})
		var bufs [2][]span.Span
		for k, i := 0, 0; k < n; i ^= 1 {
			bufs[i] = bufs[i][:0]
			for _, tr := range g.Next(perSec) {
				bufs[i] = append(bufs[i], tr.Spans...)
			}
			k += len(bufs[i])
			select {
			case chunks <- bufs[i]:
			case <-stop:
				return
			}
		}
	}()
	defer func() { // on an error: the generator stops
		if err != nil {
			close(stop)
			for range chunks {
			}
		}
	}()
	lastSeal := start
	for chunk := range chunks {
		if from == 0 {
			from = chunk[0].StartNs
		}
		to = chunk[len(chunk)-1].StartNs
		clock = time.Unix(0, to)
		if err := w.Write(chunk...); err != nil {
			return 0, 0, cpu, 0, err
		}
		if err := w.Flush(); err != nil {
			return 0, 0, cpu, 0, err
		}
		if clock.Sub(lastSeal) >= 2*time.Second {
			lastSeal = clock
			if err := w.Seal(); err != nil {
				return 0, 0, cpu, 0, err
			}
		}
		written += len(chunk)
		if clock.Sub(start) > 0 && written%(perSec*38*60) < perSec*38 { // about once a minute of span time
			if err := w.Maintain(); err != nil {
				return 0, 0, cpu, 0, err
			}
		}
	}
	if err := w.Seal(); err != nil {
		return 0, 0, cpu, 0, err
	}
	clock = clock.Add(2 * time.Minute) // every window finished: merge all
	if err := w.Maintain(); err != nil {
		return 0, 0, cpu, 0, err
	}
	err = w.Close()
	cpu = ingestCPU{process: cpuTime() - c0, gen: <-genCPU}
	return from, to, cpu, written, err
}

func runBenchStore(args []string) int {
	fs := flag.NewFlagSet("bench store", flag.ContinueOnError)
	n := fs.Int("spans", 200_000, "generated spans to store (the goals are stated for 10000000)")
	dir := fs.String("dir", "", "data directory (default: a temporary one, removed after)")
	interval := fs.Duration("interval", 5*time.Millisecond, "time between generated Bookinfo requests (38 spans each)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stop, err := startCPUProfile(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench store:", err)
		return 1
	}
	defer stop()
	if err := benchStore(*n, *dir, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "bench store:", err)
		return 1
	}
	return 0
}

// startCPUProfile profiles the process's CPU into path until the returned
// function is called; an empty path profiles nothing.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func benchStore(n int, dir string, interval time.Duration) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "zt-bench-store-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	fmt.Printf("bench store: %d generated Bookinfo spans (one request every %v) in %s\n", n, interval, dir)
	from, to, cpu, written, err := fillStore(dir, n, interval)
	if err != nil {
		return err
	}
	if cpu.gen <= 0 || cpu.store() <= 0 {
		return fmt.Errorf("ingest: CPU of the run %v, of generating %v: not measured", cpu.process, cpu.gen)
	}
	fmt.Printf("ingest: %.0f spans/CPU-s  (goal ≥ 250000, issue 29; %d spans, %.2f CPU-s: the process over the run, background, seal and merge included, but the generating thread's own %.2f CPU-s, both measured in this run; peer Jaeger+Badger ~5000)\n",
		float64(written)/cpu.store().Seconds(), written, cpu.store().Seconds(), cpu.gen.Seconds())
	fmt.Printf("ingest_with_generation: %.0f spans/CPU-s  (%.2f CPU-s: the whole process over the same run, generating the spans included; no goal)\n",
		float64(written)/cpu.process.Seconds(), cpu.process.Seconds())

	r, err := store.OpenReader(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx := context.Background()
	st, err := r.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("bytes_per_span: %.1f bytes  (goal ≤ 60, issue 29; on disk after sealing and merging: %d bytes, %d shards)\n",
		float64(st.Bytes)/float64(st.Spans), st.Bytes, st.Shards)

	// Key lookups: a random stored span's request tcp seq within ±1 min.
	rnd := rand.New(rand.NewPCG(1, 2))
	g := spangen.New(spangen.Config{Seed: 1, Start: time.Unix(0, from), Interval: interval})
	sample := g.Next(200)
	var lat []time.Duration
	for i := 0; i < 300; i++ {
		tr := sample[rnd.IntN(len(sample))]
		s := tr.Spans[rnd.IntN(len(tr.Spans))]
		if s.ReqTCPSeq == 0 {
			continue
		}
		t0 := time.Now()
		got, err := r.Lookup(ctx, s.StartNs-int64(time.Minute), s.StartNs+int64(time.Minute),
			[]span.Key{{Kind: span.KeyReqTCPSeq, U: uint64(s.ReqTCPSeq)}})
		lat = append(lat, time.Since(t0))
		if err != nil || len(got) == 0 {
			return fmt.Errorf("lookup of a stored span's tcp seq found %d spans: %v", len(got), err)
		}
	}
	fmt.Printf("lookup_p50: %s  (goal ≤ 5 ms; %d lookups by tcp seq, ±1 min window)\n", ms(percentile(lat, 0.5)), len(lat))
	fmt.Printf("lookup_p99: %s  (goal ≤ 5 ms)\n", ms(percentile(lat, 0.99)))

	lat = lat[:0]
	for i := 0; i < 50; i++ {
		end := to - int64(rnd.IntN(int(max(1, (to-from)/2))))
		t0 := time.Now()
		got, err := r.Search(ctx, store.SearchQuery{FromNs: end - int64(15*time.Minute), ToNs: end, Namespace: "bookinfo", Limit: 20})
		lat = append(lat, time.Since(t0))
		if err != nil || len(got) == 0 {
			return fmt.Errorf("search found %d spans: %v", len(got), err)
		}
	}
	fmt.Printf("search_15min_p50: %s  (goal ≤ 30 ms; one namespace, newest 20)\n", ms(percentile(lat, 0.5)))

	if err := benchVerify(ctx, dir); err != nil {
		return err
	}

	wtr, err := writeToReadable()
	if err != nil {
		return err
	}
	fmt.Printf("write_to_readable: %.2f s  (goal ≤ 5 s; worst of 5, batch 1 s, seal 2 s)\n", wtr.Seconds())
	return nil
}

// writeToReadable runs a writer with its real timers and measures how long a
// written span takes to be found by a reader (another handle, as another
// process would).
func writeToReadable() (time.Duration, error) {
	dir, err := os.MkdirTemp("", "zt-bench-wtr-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	defer w.Close()
	r, err := store.OpenReader(dir)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	g := spangen.New(spangen.Config{Seed: 9, Start: time.Now()})
	var worst time.Duration
	for i := 0; i < 5; i++ {
		s := g.Next(1)[0].Spans[0]
		s.StartNs, s.EndNs = time.Now().UnixNano(), time.Now().UnixNano()+1000
		t0 := time.Now()
		if err := w.Write(s); err != nil {
			return 0, err
		}
		for {
			got, err := r.Get(context.Background(), 0, 0, []uint64{s.SpanID})
			if err != nil {
				return 0, err
			}
			if len(got) == 1 {
				break
			}
			if time.Since(t0) > 30*time.Second {
				return 0, fmt.Errorf("span not readable after 30 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		worst = max(worst, time.Since(t0))
		time.Sleep(time.Duration(300*i) * time.Millisecond) // land at different points of the seal cycle
	}
	return worst, nil
}

// benchVerify times the checksum check a reader runs before it first opens
// the shards (ADR 0002), cold (a new reader), against sha256sum over the
// same files. Medians of 3.
func benchVerify(ctx context.Context, dir string) error {
	var ours, peer []time.Duration
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(p) != store.ManifestName {
			files = append(files, p)
		}
		return nil
	})
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}
	for i := 0; i < 3; i++ {
		r, err := store.OpenReader(dir)
		if err != nil {
			return err
		}
		t0 := time.Now()
		err = r.Verify(ctx)
		ours = append(ours, time.Since(t0))
		r.Close()
		if err != nil {
			return fmt.Errorf("verifying: %w", err)
		}
		t0 = time.Now()
		if out, err := exec.Command("sha256sum", files...).CombinedOutput(); err != nil {
			return fmt.Errorf("sha256sum: %v: %s", err, out)
		}
		peer = append(peer, time.Since(t0))
	}
	mbs := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	fmt.Printf("verify_cold: %.0f MB/s  (goal ≥ 500 MB/s; %d MB in %d files hashed before first open; peer sha256sum %.0f MB/s)\n",
		mbs(percentile(ours, 0.5)), size/1e6, len(files), mbs(percentile(peer, 0.5)))
	return nil
}
