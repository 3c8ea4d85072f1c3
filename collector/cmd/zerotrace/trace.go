package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

func init() {
	register(command{name: "trace", summary: "assemble a trace (trace id or span id) and draw it as a waterfall", run: runTrace})
	register(command{name: "search", summary: "recent calls matching filters, newest first, with their trace ids", run: runSearch})
}

type dirsFlag []string

func (d *dirsFlag) String() string     { return strings.Join(*d, ",") }
func (d *dirsFlag) Set(s string) error { *d = append(*d, s); return nil }

func dataDirs(d dirsFlag) []string {
	if len(d) == 0 {
		return []string{store.DefaultDataDir}
	}
	return d
}

func runTrace(args []string) int {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	var dirs dirsFlag
	fs.Var(&dirs, "data-dir", "data directory (repeat for several nodes; default "+store.DefaultDataDir+")")
	width := fs.Int("width", 40, "width of the timing bars")
	since := fs.Duration("since", time.Hour, "with --object-store: look for the trace's id this long ago until now (its spans are then looked up around it)")
	var bf bucketFlags
	bf.register(fs)
	wantSpans := fs.Int("expect-spans", 0, "exit 1 unless the trace has this many spans (0: any)")
	wantRoots := fs.Int("expect-roots", 0, "exit 1 unless the trace has this many roots (0: any)")
	// Accept the id before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" {
		fmt.Fprintln(os.Stderr, "usage: zerotrace trace <trace-id|span-id> [--data-dir DIR]... (span ids: 16 hex digits, or decimal)")
		return 2
	}
	r, finish, err := openStore(dirs, bf, time.Now().Add(-*since).UnixNano(), 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "trace:", err)
		return 1
	}
	defer func() { warnf("trace", finish()) }()
	// A trace id, or a span id as every surface prints it (16 hex digits),
	// or the decimal span ids older versions printed.
	src := &readErrors{Source: r}
	t, err := trace.AssembleRef(context.Background(), src, trace.Config{}, id)
	if errors.Is(err, trace.ErrNotFound) && src.err == nil {
		fmt.Fprintf(os.Stderr, "trace: %v%s\n", err, storeSummary(context.Background(), r))
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trace:", err)
		return 1
	}
	fmt.Print(Waterfall(t, *width))
	if src.err != nil {
		// The trace may lack the spans of what could not be read: not a
		// complete answer.
		fmt.Fprintln(os.Stderr, "trace: incomplete, some spans could not be read:", uniqueLines(src.err))
		return 1
	}
	roots := 0
	for _, p := range t.Parents {
		if p < 0 {
			roots++
		}
	}
	if (*wantSpans > 0 && len(t.Spans) != *wantSpans) || (*wantRoots > 0 && roots != *wantRoots) {
		fmt.Fprintf(os.Stderr, "trace: %d spans and %d root(s), expected %d and %d\n", len(t.Spans), roots, *wantSpans, *wantRoots)
		return 1
	}
	return 0
}

// Waterfall draws a trace as an indented tree with one timing bar per span.
func Waterfall(t *trace.Trace, width int) string {
	var b strings.Builder
	if len(t.Spans) == 0 {
		return "empty trace\n"
	}
	t0, t1 := t.Spans[0].StartNs, t.Spans[0].EndNs
	children := make([][]int, len(t.Spans))
	var roots []int
	var ebpf, pkt int
	for i := range t.Spans {
		s := &t.Spans[i]
		t0, t1 = min(t0, s.StartNs), max(t1, s.EndNs)
		if p := t.Parents[i]; p >= 0 {
			children[p] = append(children[p], i)
		} else {
			roots = append(roots, i)
		}
		switch s.SignalSource {
		case span.SourceEBPF:
			ebpf++
		case span.SourcePacket:
			pkt++
		}
	}
	total := max(t1-t0, 1)
	fmt.Fprintf(&b, "trace %s: %d spans (%d eBPF, %d packet), %d root(s), %s\n", t.ID, len(t.Spans), ebpf, pkt, len(roots),
		time.Duration(total).Round(time.Microsecond))
	for _, w := range t.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	type row struct {
		label string
		i     int
	}
	var rows []row
	var walk func(i, depth int)
	walk = func(i, depth int) {
		s := &t.Spans[i]
		where := s.ServiceName() // the workload ("productpage", "productpage (proxy)"), else the process
		if s.SignalSource == span.SourcePacket {
			where = s.CaptureNIC
			if s.Workload != "" {
				where += " (" + s.Workload + ")"
			}
		}
		label := fmt.Sprintf("%s%-4s %s/%s %s", strings.Repeat("  ", depth), s.TapSide, s.Node, where, s.OperationName())
		if i < len(t.Evidence) && t.Evidence[i] != "" {
			label += " (" + string(t.Evidence[i]) + ")" // what links it to its parent
		}
		if lib := s.Flags.TLSLibrary(); lib != "" {
			label += " [tls " + lib + "]" // read from the TLS library (docs/tls.md)
		}
		rows = append(rows, row{label, i})
		for _, c := range children[i] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	lw := 0
	for _, r := range rows {
		lw = max(lw, len(r.label))
	}
	for _, r := range rows {
		s := &t.Spans[r.i]
		a := int((s.StartNs - t0) * int64(width) / total)
		e := max(int((s.EndNs-t0)*int64(width)/total), a+1)
		a, e = min(a, width), min(e, width)
		bar := strings.Repeat(" ", a) + strings.Repeat("█", e-a) + strings.Repeat(" ", width-e)
		status := fmt.Sprint(s.ResponseCode)
		if s.ResponseStatus.IsError() {
			status += " " + s.ResponseStatus.String()
		}
		fmt.Fprintf(&b, "%-*s  %-5s %-4s %9.3f ms |%s| %s\n", lw, r.label, s.L7Protocol, status, float64(s.EndNs-s.StartNs)/1e6, bar,
			span.FormatSpanID(s.SpanID))
	}
	return b.String()
}

func runSearch(args []string) int {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	var dirs dirsFlag
	fs.Var(&dirs, "data-dir", "data directory (repeat for several nodes; default "+store.DefaultDataDir+")")
	since := fs.Duration("since", 15*time.Minute, "how far back")
	var q store.SearchQuery
	fs.StringVar(&q.Namespace, "namespace", "", "namespace")
	fs.StringVar(&q.Service, "service", "", "service")
	fs.StringVar(&q.Workload, "workload", "", "Kubernetes workload (or the demo's netns mapping)")
	fs.StringVar(&q.Protocol, "protocol", "", "l7 protocol (http, grpc, …)")
	fs.StringVar(&q.Endpoint, "endpoint", "", "normalised endpoint")
	fs.StringVar(&q.Status, "status", "", "ok, client_error, server_error, timeout")
	fs.DurationVar(&q.MinDuration, "min-duration", 0, "only calls at least this long")
	fs.DurationVar(&q.MaxDuration, "max-duration", 0, "only calls at most this long (0: any)")
	fs.IntVar(&q.Limit, "limit", 20, "rows")
	tap := fs.String("tap", "s-p", "tap side of the rows (empty: all)")
	var bf bucketFlags
	bf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *tap != "" {
		t, err := span.ParseTapSide(*tap)
		if err != nil {
			fmt.Fprintln(os.Stderr, "search:", err)
			return 2
		}
		q.TapSides = []span.TapSide{t}
	}
	q.FromNs = time.Now().Add(-*since).UnixNano()
	r, finish, err := openStore(dirs, bf, q.FromNs, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "search:", err)
		return 1
	}
	defer func() { warnf("search", finish()) }()
	ctx := context.Background()
	spans, err := r.Search(ctx, q)
	for i := range spans {
		s := &spans[i]
		fmt.Printf("%s  %-32s  %s  %-12s %-4s %-40s %4d %9.3f ms\n", time.Unix(0, s.StartNs).Format("15:04:05.000"),
			trace.LinkID(s), span.FormatSpanID(s.SpanID), s.ServiceName(), s.TapSide, s.OperationName(),
			s.ResponseCode, float64(s.EndNs-s.StartNs)/1e6)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "search:", err)
		return 1
	}
	if len(spans) == 0 {
		// Only now is "no match" the answer: the store was read.
		fmt.Fprintf(os.Stderr, "search: no calls match in the last %s%s\n", *since, storeSummary(ctx, r))
	}
	return 0
}

// storeSummary says what a store read from directories holds, " (the
// store: N nodes, …)"; "" for a bucket query.
func storeSummary(ctx context.Context, r source) string {
	sr, ok := r.(interface {
		Stats(context.Context) (store.Stats, error)
	})
	if !ok {
		return ""
	}
	st, _ := sr.Stats(ctx)
	return fmt.Sprintf(" (the store: %d nodes, %d shards, %d spans%s)", len(st.Nodes), st.Shards, st.Spans, newest(st.NewestNs))
}

// newest says how old the newest span is, if there is one.
func newest(ns int64) string {
	if ns == 0 {
		return ""
	}
	return fmt.Sprintf(", the newest %s ago", time.Since(time.Unix(0, ns)).Round(time.Second))
}

// uniqueLines is err's lines, each once, joined by "; ".
func uniqueLines(err error) string {
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(err.Error(), "\n") {
		if l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// readErrors is the store as trace assembly reads it, remembering whether
// any read failed.
type readErrors struct {
	trace.Source
	err error
}

func (s *readErrors) Lookup(ctx context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error) {
	spans, err := s.Source.Lookup(ctx, fromNs, toNs, keys)
	s.err = errors.Join(s.err, err)
	return spans, err
}

func (s *readErrors) Get(ctx context.Context, fromNs, toNs int64, ids []uint64) ([]span.Span, error) {
	spans, err := s.Source.Get(ctx, fromNs, toNs, ids)
	s.err = errors.Join(s.err, err)
	return spans, err
}
