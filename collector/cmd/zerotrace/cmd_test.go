package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

func fill(t *testing.T) (string, []spangen.Trace) {
	t.Helper()
	traces := spangen.New(spangen.Config{Seed: 3, Start: time.Now().Add(-time.Minute)}).Next(3)
	return fillTraces(t, traces), traces
}

// fillTraces writes traces into a new data directory, one node directory
// per node.
func fillTraces(t *testing.T, traces []spangen.Trace) string {
	t.Helper()
	dir := t.TempDir()
	ws := map[string]*store.Writer{}
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if ws[s.Node] == nil {
				w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: s.Node, NoBackground: true})
				if err != nil {
					t.Fatal(err)
				}
				ws[s.Node] = w
			}
			ws[s.Node].Write(s)
		}
	}
	for _, w := range ws {
		w.Close()
	}
	return dir
}

// capture runs a subcommand and returns its exit code and stdout.
func capture(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, _ := os.Pipe()
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	code := dispatch(args)
	w.Close()
	os.Stdout = old
	return code, <-done
}

func TestTraceWaterfall(t *testing.T) {
	dir, traces := fill(t)
	code, out := capture(t, "trace", span.FormatSpanID(traces[1].Spans[5].SpanID), "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	// Every row ends with its span id, 16 hex digits; the decimal id of
	// older versions and an upper-case hex id open the same trace.
	for _, s := range traces[1].Spans {
		if !strings.Contains(out, "| "+span.FormatSpanID(s.SpanID)+"\n") {
			t.Errorf("waterfall lacks span %s:\n%s", span.FormatSpanID(s.SpanID), out)
		}
	}
	for _, id := range []string{strconv.FormatUint(traces[1].Spans[5].SpanID, 10), strings.ToUpper(span.FormatSpanID(traces[1].Spans[5].SpanID))} {
		if c, o := capture(t, "trace", id, "--data-dir", dir); c != 0 || o != out {
			t.Errorf("trace %s: exit %d, output differs:\n%s", id, c, o)
		}
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !strings.Contains(lines[0], "38 spans (24 eBPF, 14 packet), 1 root(s)") {
		t.Fatalf("header %q", lines[0])
	}
	if len(lines) != 39 {
		t.Fatalf("%d lines, want header + 38 spans:\n%s", len(lines), out)
	}
	deepest := 0
	for _, l := range lines[1:] {
		deepest = max(deepest, len(l)-len(strings.TrimLeft(l, " ")))
	}
	// The ratings application span is the 28th hop from the curl span.
	if deepest != 2*27 {
		t.Errorf("deepest span indented %d, want %d:\n%s", deepest, 2*27, out)
	}
	if code, _ := capture(t, "trace", "0123456789abcdef0123456789abcdef", "--data-dir", dir); code == 0 {
		t.Error("unknown trace id succeeded")
	}
	// demo/run's check: the whole trace passes, anything else fails.
	id := strconv.FormatUint(traces[1].Spans[5].SpanID, 10)
	for _, c := range []struct {
		spans, roots string
		code         int
	}{{"38", "1", 0}, {"37", "1", 1}, {"38", "2", 1}} {
		if code, _ := capture(t, "trace", id, "--data-dir", dir, "--expect-spans", c.spans, "--expect-roots", c.roots); code != c.code {
			t.Errorf("--expect-spans %s --expect-roots %s: exit %d, want %d", c.spans, c.roots, code, c.code)
		}
	}
}

func TestSearchAndStore(t *testing.T) {
	dir, traces := fill(t)
	code, out := capture(t, "search", "--data-dir", dir, "--namespace", "bookinfo", "--service", "ratings", "--since", "1h")
	if code != 0 || strings.Count(out, "\n") != 6 { // per request: the ratings sidecar s-p and the ratings app s-p
		t.Fatalf("search exit %d, output:\n%s", code, out)
	}
	// The printed trace id opens the trace; the span id beside it is hex.
	id := strings.Fields(strings.Split(out, "\n")[0])[1]
	if sid := strings.Fields(strings.Split(out, "\n")[0])[2]; !span.IsHexSpanID(sid) {
		t.Errorf("search row's span id %q: want 16 hex digits", sid)
	}
	r, _ := store.OpenReader(dir)
	defer r.Close()
	tr, err := trace.Assemble(context.Background(), r, trace.Config{}, id, 0, 0)
	if err != nil || len(tr.Spans) != 38 {
		t.Fatalf("trace of search row %s: %v", id, err)
	}
	code, out = capture(t, "store", "stats", dir)
	if code != 0 || !strings.Contains(out, "114 spans") {
		t.Fatalf("store stats exit %d:\n%s", code, out)
	}
	if strings.Contains(out, "capture") {
		t.Fatalf("store stats prints capture counters no collector recorded:\n%s", out)
	}
	// A collector's capture counters in node1, and its store's, on a disk
	// with no room (more free space asked for than there is): printed
	// under that node.
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: "node1", NoBackground: true, MinFree: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(traces[0].Spans...)
	w.Flush()
	if err := w.WriteCaptureStats(store.CaptureStats{UpdatedNs: 2e9, StartedNs: 1e9, EBPF: &store.EBPFStats{Events: 900, RingbufDrops: 12},
		Interfaces: []store.InterfaceStats{{Name: "node1:veth0", Packets: 77, Drops: 5}}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	code, out = capture(t, "store", "stats", dir)
	for _, want := range []string{": 12 ring-buffer drops, 5 packet drops\n", "    ebpf: 900 events, 12 ring-buffer drops\n", "    packet node1:veth0: 77 frames, 5 drops\n",
		"  store: 0 spans written, 38 dropped for lack of disk space, 0 dropped on write errors, 0 deleted by retention (0 for age, 0 for the budget)\n",
		"(keeping 4611686018427387904 free)\n", "    short of disk space since "} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("store stats exit %d, want %q in:\n%s", code, want, out)
		}
	}
	code, out = capture(t, "store", "dump", "--key", "req_tcp_seq="+strconv.FormatUint(uint64(traces[0].Spans[0].ReqTCPSeq), 10), dir)
	if code != 0 || strings.Count(out, "\n") != 2 { // curl's c-p and its sidecar's s-p on loopback
		t.Fatalf("store dump --key exit %d:\n%s", code, out)
	}
}

// TestStoreVerify: a whole store verifies; a changed byte fails, naming the
// shard.
func TestStoreVerify(t *testing.T) {
	dir, _ := fill(t)
	if code, out := capture(t, "store", "verify", dir); code != 0 || !strings.Contains(out, "114 spans") {
		t.Fatalf("exit %d: %s", code, out)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "node1", "*", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file")
	}
	f, err := os.OpenFile(ssts[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, 100)
	f.Close()
	if code, _ := capture(t, "store", "verify", dir); code != 1 {
		t.Fatalf("a changed table verified: exit %d", code)
	}
}

// A reused X-Request-ID: `zerotrace trace` shows the request's own whole
// trace and a warning naming the id.
func TestTraceReusedIDWarning(t *testing.T) {
	traces := spangen.New(spangen.Config{Seed: 5, Start: time.Now().Add(-time.Minute), Interval: 100 * time.Millisecond,
		ClientXRID: "batch-7"}).Next(110)
	dir := fillTraces(t, traces)
	code, out := capture(t, "trace", strconv.FormatUint(traces[3].Spans[0].SpanID, 10), "--data-dir", dir,
		"--expect-spans", "38", "--expect-roots", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(out, "\n")
	if want := `warning: reused X-Request-ID "batch-7": 110 exchanges at`; len(lines) < 2 || !strings.HasPrefix(lines[1], want) {
		t.Fatalf("second line %q, want %q…", lines[1], want)
	}
}
