package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/store"
)

func init() {
	register(command{name: "generate", summary: "write generated Bookinfo traces into shards, one node directory per node (Grafana development, demos)", run: runGenerate})
}

func runGenerate(args []string) int {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "data directory (node directories are created in it)")
	n := fs.Int("requests", 100, "Bookinfo requests (38 spans each)")
	interval := fs.Duration("interval", 100*time.Millisecond, "time between requests (smaller overlaps them)")
	ago := fs.Duration("ago", time.Minute, "the first request starts this long ago")
	errRate := fs.Float64("error-rate", 0.05, "share of ratings calls answering 503")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "generator seed")
	group := fs.String("data-group", "", "group that may read the shards (Grafana's docker image runs with group 0)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: zerotrace generate --data-dir DIR [--requests N] [--interval D]")
		return 2
	}
	g := spangen.New(spangen.Config{Seed: *seed, Start: time.Now().Add(-*ago), Interval: *interval, ErrorRate: *errRate})
	ws := map[string]*store.Writer{}
	spans := 0
	for _, tr := range g.Next(*n) {
		for _, s := range tr.Spans {
			w := ws[s.Node]
			if w == nil {
				var err error
				w, err = store.OpenWriter(store.WriterOptions{Dir: *dir, Node: s.Node, Group: *group, NoBackground: true, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "generate:", err)
					return 1
				}
				ws[s.Node] = w
			}
			if err := w.Write(s); err != nil {
				fmt.Fprintln(os.Stderr, "generate:", err)
				return 1
			}
			spans++
		}
	}
	for _, w := range ws {
		if err := w.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "generate:", err)
			return 1
		}
	}
	fmt.Printf("generate: %d requests, %d spans, %d nodes in %s\n", *n, spans, len(ws), *dir)
	return 0
}
