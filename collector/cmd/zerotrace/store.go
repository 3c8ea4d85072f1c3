package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

func init() {
	register(command{name: "store stats", summary: "shards, spans, bytes and time range of data directories", run: runStoreStats})
	register(command{name: "store dump", summary: "print spans of data directories (--key kind=value, --limit)", run: runStoreDump})
	register(command{name: "store verify", summary: "check every sealed shard against the checksums recorded when it was sealed", run: runStoreVerify})
}

// runStoreVerify checks every listed shard as the plugin does before it
// opens one (ADR 0002): exit 1 naming each manifest or shard that fails.
func runStoreVerify(args []string) int {
	fs := flag.NewFlagSet("store verify", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: zerotrace store verify <data-dir>...")
		return 2
	}
	r, err := openDirs(fs.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "store verify:", err)
		return 1
	}
	defer r.Close()
	ctx := context.Background()
	st, _ := r.Stats(ctx)
	if err := r.Verify(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "store verify:", err)
		fmt.Printf("%d shards listed; some cannot be read\n", st.Shards)
		return 1
	}
	fmt.Printf("%d shards, %d spans: every file matches its checksum\n", st.Shards, st.Spans)
	return 0
}

func fmtNs(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// printCaptureStats prints what the node's collector recorded about its
// captures' loss (store.CaptureStatsName), if anything.
func printCaptureStats(nodeDir string) {
	cs, ok, err := store.ReadCaptureStats(nodeDir)
	if err != nil {
		fmt.Printf("  capture: %v\n", err)
		return
	}
	if !ok {
		return
	}
	rb, pk := cs.Drops()
	fmt.Printf("  capture since %s (updated %s): %d ring-buffer drops, %d packet drops\n", fmtNs(cs.StartedNs), fmtNs(cs.UpdatedNs), rb, pk)
	if cs.EBPF != nil {
		fmt.Printf("    ebpf: %d events, %d ring-buffer drops\n", cs.EBPF.Events, cs.EBPF.RingbufDrops)
	}
	for _, i := range cs.Interfaces {
		fmt.Printf("    packet %s: %d frames, %d drops\n", i.Name, i.Packets, i.Drops)
	}
	if st := cs.Store; st != nil {
		fmt.Printf("  store: %d spans written, %d dropped for lack of disk space, %d dropped on write errors, %d deleted by retention (%d for age, %d for the budget)\n",
			st.Spans, st.DroppedDisk, st.DroppedError, st.DeletedAge+st.DeletedBudget, st.DeletedAge, st.DeletedBudget)
		budget := "no budget"
		if st.BudgetBytes > 0 {
			budget = fmt.Sprintf("budget %d", st.BudgetBytes)
		}
		fmt.Printf("    disk: node directory %d bytes (%s), %d bytes free of %d (keeping %d free)\n", st.UsedBytes, budget, st.FreeBytes, st.FSBytes, st.MinFreeBytes)
		if st.ShortSinceNs != 0 {
			fmt.Printf("    short of disk space since %s: new spans are dropped\n", fmtNs(st.ShortSinceNs))
		}
		if st.MergesWaiting > 0 || st.Unrecovered > 0 {
			fmt.Printf("    waiting for disk space: %d merges, %d head shards a crash left\n", st.MergesWaiting, st.Unrecovered)
		}
	}
}

func runStoreStats(args []string) int {
	fs := flag.NewFlagSet("store stats", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: zerotrace store stats <data-dir>...")
		return 2
	}
	r, err := openDirs(fs.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "store stats:", err)
		return 1
	}
	defer r.Close()
	st, err := r.Stats(context.Background())
	for _, n := range st.Nodes {
		fmt.Printf("node %s (%s): %d shards (%d merged), %d spans, %d bytes, %s … %s\n",
			n.Node, n.Dir, n.Shards, n.Merged, n.Spans, n.Bytes, fmtNs(n.OldestNs), fmtNs(n.NewestNs))
		printCaptureStats(n.Dir)
	}
	fmt.Printf("total: %d nodes, %d shards, %d spans, %d bytes", len(st.Nodes), st.Shards, st.Spans, st.Bytes)
	if st.Spans > 0 {
		fmt.Printf(" (%.1f bytes/span), newest span %s ago", float64(st.Bytes)/float64(st.Spans),
			time.Since(time.Unix(0, st.NewestNs)).Round(time.Millisecond))
	}
	fmt.Println()
	if err != nil {
		fmt.Fprintln(os.Stderr, "store stats:", err)
		return 1
	}
	return 0
}

// parseKey reads kind=value, e.g. req_tcp_seq=12345, x_request_id=abc, trace_id=<hex>.
func parseKey(s string) (span.Key, error) {
	kind, val, ok := strings.Cut(s, "=")
	if !ok {
		return span.Key{}, fmt.Errorf("key %q: want kind=value", s)
	}
	var k span.Key
	switch kind {
	case "req_tcp_seq":
		k.Kind = span.KeyReqTCPSeq
	case "resp_tcp_seq":
		k.Kind = span.KeyRespTCPSeq
	case "syscall_trace_id":
		k.Kind = span.KeySyscallTraceID
	case "app_span_id":
		k.Kind = span.KeyAppSpanID
	case "x_request_id":
		return span.Key{Kind: span.KeyXRequestID, S: val}, nil
	case "trace_id":
		t, ok := span.ParseTraceID(val)
		if !ok {
			return k, fmt.Errorf("key %q: bad trace id", s)
		}
		return span.Key{Kind: span.KeyTraceID, T: t}, nil
	default:
		return k, fmt.Errorf("key %q: unknown kind (req_tcp_seq, resp_tcp_seq, syscall_trace_id, x_request_id, trace_id, app_span_id)", s)
	}
	u, err := strconv.ParseUint(val, 0, 64)
	if err != nil {
		return k, fmt.Errorf("key %q: %w", s, err)
	}
	k.U = u
	return k, nil
}

func runStoreDump(args []string) int {
	fs := flag.NewFlagSet("store dump", flag.ContinueOnError)
	limit := fs.Int("limit", 50, "print at most this many spans (0: all)")
	key := fs.String("key", "", "only spans with this correlation key, kind=value")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: zerotrace store dump [--limit N] [--key kind=value] <data-dir>...")
		return 2
	}
	r, err := openDirs(fs.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "store dump:", err)
		return 1
	}
	defer r.Close()
	ctx := context.Background()
	n := 0
	print := func(s *span.Span) bool {
		fmt.Println(formatSpan(s))
		n++
		return *limit == 0 || n < *limit
	}
	if *key != "" {
		k, err := parseKey(*key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "store dump:", err)
			return 2
		}
		spans, err := r.Lookup(ctx, 0, int64(^uint64(0)>>1), []span.Key{k})
		for i := range spans {
			if !print(&spans[i]) {
				break
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "store dump:", err)
			return 1
		}
		return 0
	}
	if err := r.Dump(ctx, 0, 0, print); err != nil {
		fmt.Fprintln(os.Stderr, "store dump:", err)
		return 1
	}
	return 0
}

// formatSpan is one line per span: the fields that identify and correlate it.
func formatSpan(s *span.Span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s span=%s node=%s src=%s tap=%s", fmtNs(s.StartNs), span.FormatSpanID(s.SpanID), s.Node, s.SignalSource, s.TapSide)
	if s.CaptureNIC != "" {
		fmt.Fprintf(&b, " nic=%s", s.CaptureNIC)
	}
	if s.PID != 0 {
		fmt.Fprintf(&b, " pid=%d proc=%s", s.PID, s.ProcessName)
	}
	fmt.Fprintf(&b, " %s:%d->%s:%d %s %s %s%s %d %s dur=%s", s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort,
		s.L7Protocol, s.RequestType, s.RequestDomain, s.RequestResource, s.ResponseCode, s.ResponseStatus, s.Duration())
	fmt.Fprintf(&b, " seq=%d/%d", s.ReqTCPSeq, s.RespTCPSeq)
	if s.SyscallTraceIDReq != 0 || s.SyscallTraceIDResp != 0 {
		fmt.Fprintf(&b, " sys=%d/%d", s.SyscallTraceIDReq, s.SyscallTraceIDResp)
	}
	if s.XRequestIDReq != "" || s.XRequestIDResp != "" {
		fmt.Fprintf(&b, " xrid=%s/%s", s.XRequestIDReq, s.XRequestIDResp)
	}
	if !s.TraceID.IsZero() {
		fmt.Fprintf(&b, " trace=%s", s.TraceID)
	}
	return b.String()
}
