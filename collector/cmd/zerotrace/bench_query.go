//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

func init() {
	register(command{name: "bench query", summary: "trace assembly and search latency on a store of generated spans", run: runBenchQuery})
}

func runBenchQuery(args []string) int {
	fs := flag.NewFlagSet("bench query", flag.ContinueOnError)
	n := fs.Int("spans", 200_000, "generated spans in the store (the goals are stated for 10000000)")
	dir := fs.String("dir", "", "use an existing store filled by `bench store --dir` with the same --interval (default: fill a temporary one)")
	interval := fs.Duration("interval", 5*time.Millisecond, "time between generated requests")
	resident := fs.Duration("resident", 15*time.Minute, "keep the shards of this much recent span time resident, as the plugin does (its residentMinutes setting); 0: none")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the queries (not of filling the store) to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := benchQuery(*n, *dir, *interval, *resident, *prof); err != nil {
		fmt.Fprintln(os.Stderr, "bench query:", err)
		return 1
	}
	return 0
}

func benchQuery(n int, dir string, interval, resident time.Duration, prof string) error {
	var from, to int64
	if dir == "" {
		d, err := os.MkdirTemp("", "zt-bench-query-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
		fmt.Printf("bench query: filling a store with %d generated Bookinfo spans in %s\n", n, dir)
		if from, to, _, _, err = fillStore(dir, n, interval); err != nil {
			return err
		}
	}
	stop, err := startCPUProfile(prof)
	if err != nil {
		return err
	}
	defer stop()
	ctx := context.Background()
	// Seeds: requests regenerated with the store's seed, spread over the range.
	seeds := func(from, to int64) ([]uint64, []int) {
		g := spangen.New(spangen.Config{Seed: 1, Start: time.Unix(0, from).UTC(), Interval: interval})
		traces := int((to - from) / int64(interval))
		rnd := rand.New(rand.NewPCG(3, 4))
		picks := map[int]bool{}
		for len(picks) < min(100, max(1, traces)) {
			picks[rnd.IntN(max(1, traces))] = true
		}
		var ids []uint64
		var idx []int
		for i := 0; i <= traces && len(ids) < len(picks); i += 256 {
			for _, tr := range g.Next(256) {
				if picks[tr.Index] {
					ids = append(ids, tr.Spans[rnd.IntN(len(tr.Spans))].SpanID)
					idx = append(idx, tr.Index)
				}
			}
		}
		return ids, idx
	}
	assemble := func(r *store.Reader, id uint64) (int, time.Duration, error) {
		t0 := time.Now()
		t, err := trace.Assemble(ctx, r, trace.Config{}, strconv.FormatUint(id, 10), 0, 0)
		if err != nil {
			return 0, 0, err
		}
		return len(t.Spans), time.Since(t0), nil
	}

	// A reader with nothing resident: its first query verifies and opens
	// every shard it touches (ADR 0002).
	cold, err := store.OpenReader(dir)
	if err != nil {
		return err
	}
	st, err := cold.Stats(ctx)
	if err != nil {
		return err
	}
	if from == 0 {
		from, to = st.OldestNs, st.NewestNs
	}
	ids, idx := seeds(from, to)
	_, coldFirst, err := assemble(cold, ids[0])
	cold.Close()
	if err != nil {
		return fmt.Errorf("assembling trace %d: %w", idx[0], err)
	}

	// The plugin's reader: recent shards resident, warmed in the background
	// before queries arrive.
	r, err := store.OpenReaderWith(store.ReaderOptions{Resident: resident}, dir)
	if err != nil {
		return err
	}
	defer r.Close()
	t0, c0 := time.Now(), cpuTime()
	opened := r.Warm(ctx)
	fmt.Printf("resident_warm: %.2f s, %.2f CPU-s  (%d shards of the last %v of span time verified, opened, directories read, older shards verified up to %d MiB; in the plugin in the background, before queries)\n",
		time.Since(t0).Seconds(), (cpuTime() - c0).Seconds(), opened, resident, store.DefaultVerifyAheadBytes>>20)
	var lat []time.Duration
	sizes := map[int]int{}
	c0 = cpuTime()
	for i, id := range ids {
		n, d, err := assemble(r, id)
		if err != nil {
			return fmt.Errorf("assembling trace %d: %w", idx[i], err)
		}
		lat = append(lat, d)
		sizes[n]++
	}
	queryCPU := cpuTime() - c0
	fmt.Printf("assembly_p50: %s  (goal ≤ 20 ms; %d Bookinfo traces from a random seed span, sizes %v, store of %d spans)\n",
		ms(percentile(lat, 0.5)), len(lat), sizes, st.Spans)
	fmt.Printf("assembly_p99: %s  (goal ≤ 50 ms, issue 29; the first query included)\n", ms(percentile(lat, 0.99)))
	if len(lat) > 1 {
		fmt.Printf("assembly_first: %s  (the first query; p99 of the others %s; the same first query on a reader with nothing resident %s)\n",
			ms(lat[0]), ms(percentile(lat[1:], 0.99)), ms(coldFirst))
	}
	fmt.Printf("assembly_cpu: %s per trace  (the process's CPU over the %d assemblies above, divided by them: what the load of a shared machine moves less than latency)\n",
		ms(queryCPU/time.Duration(len(lat))), len(lat))
	rnd := rand.New(rand.NewPCG(5, 6))
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
	return nil
}
