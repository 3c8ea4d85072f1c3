//go:build linux

package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// TestCollectEndToEnd: the collector captures curl → a Python server that
// calls a second Python server on the same thread, inside a network
// namespace, with eBPF and with packets on lo; after shutdown the store holds
// the four process spans and the two loopback packet spans, and the
// assembler links them into one trace: curl c-p → lo → front s-p → front c-p
// → lo → leaf s-p. /metrics reports both captures, and a batch of three
// requests that reuse one X-Request-ID, over a bound of two, as one
// repeated key and one exchange beyond the bound.
func TestCollectEndToEnd(t *testing.T) {
	testenv.RequireRoot(t) // loads BPF programs and creates a network namespace
	ns := testNetns(t, fmt.Sprintf("zt-ebpf-%d-agent", os.Getpid()))
	dir := t.TempDir()
	cfg := Defaults()
	cfg.Node, cfg.DataDir = "node-t", dir
	cfg.EBPF.NetNS = []string{ns}
	cfg.Packet.Interfaces = []InterfaceConfig{{Netns: ns, Pattern: "l*"}} // lo: role local
	cfg.MetricsAddr = "127.0.0.1:19465"
	cfg.RepeatedKeys.Exchanges = 2
	cancel, done := startCollector(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer cancel()
	startServer(t, ns, 20081, "")
	startServer(t, ns, 20080, "http://127.0.0.1:20081")
	// A batch job's three requests with one id: the front server receives
	// it three times (it does not pass it on).
	batch := fmt.Sprintf("batch-%d", time.Now().UnixNano())
	for i := range 3 {
		if out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-s", "--max-time", "10", "-H", "X-Request-ID: "+batch,
			fmt.Sprintf("http://127.0.0.1:20080/batch/%d", i)).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	path := fmt.Sprintf("/agent-%d/order", time.Now().UnixNano())
	out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-s", "--max-time", "10", "http://127.0.0.1:20080"+path).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	// No wait: the eBPF events are counted in the kernel as they are
	// written, and the spans are read from the store after the shutdown,
	// whose Close of each capture takes what its ring holds first.
	resp, err := http.Get("http://" + cfg.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "zerotrace_packet_packets_total{iface=") ||
		!strings.Contains(string(metrics), "zerotrace_ebpf_events_total") || strings.Contains(string(metrics), "zerotrace_ebpf_events_total 0\n") {
		t.Errorf("/metrics:\n%s", metrics)
	}
	if !strings.Contains(string(metrics), "\nzerotrace_ebpf_drop_storage_total 0\n") {
		t.Errorf("/metrics: want zerotrace_ebpf_drop_storage_total 0 (every syscall kept):\n%s", metrics)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(string(metrics), `zerotrace_repeated_keys_total{key="x_request_id"} 1`+"\n") &&
		time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get("http://" + cfg.MetricsAddr + "/metrics"); err == nil {
			metrics, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
	for _, want := range []string{`zerotrace_repeated_keys_total{key="x_request_id"} 1`, `zerotrace_repeated_key_exchanges_total{key="x_request_id"} 1`,
		`zerotrace_repeated_keys_total{key="trace_id"} 0`, `zerotrace_repeated_keys_untracked_total 0`} {
		if !strings.Contains(string(metrics), "\n"+want+"\n") {
			t.Errorf("/metrics: want %s:\n%s", want, metrics)
		}
	}
	if resp, err := http.Get("http://" + cfg.MetricsAddr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz (the DaemonSet's readiness probe): %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("collector shutdown: %v", err)
	}
	// The capture counters recorded in the node directory for `store stats`
	// and the plugin's health: at least what /metrics counted before the
	// shutdown, on lo of the namespace, and no loss.
	cs, ok, err := store.ReadCaptureStats(filepath.Join(dir, cfg.Node))
	if err != nil || !ok {
		t.Fatalf("capture stats: ok=%v err=%v", ok, err)
	}
	if cs.EBPF == nil || float64(cs.EBPF.Events) < metricValue(string(metrics), "zerotrace_ebpf_events_total") || cs.EBPF.RingbufDrops != 0 {
		t.Errorf("capture stats eBPF %+v; /metrics before shutdown:\n%s", cs.EBPF, metrics)
	}
	if len(cs.Interfaces) != 1 || cs.Interfaces[0].Name != "/run/netns/"+ns+":lo" || cs.Interfaces[0].Drops != 0 ||
		float64(cs.Interfaces[0].Packets) < metricValue(string(metrics), "zerotrace_packet_packets_total") || cs.Interfaces[0].Packets == 0 {
		t.Errorf("capture stats interfaces %+v; /metrics before shutdown:\n%s", cs.Interfaces, metrics)
	}

	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Search(context.Background(), store.SearchQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var seed *span.Span
	n := 0
	for i := range got {
		if got[i].RequestResource == path {
			n++
			if got[i].TapSide == span.TapClientProcess && got[i].ProcessName == "curl" {
				seed = &got[i]
			}
		}
	}
	if n != 6 || seed == nil {
		for _, s := range got {
			t.Logf("%s %s %s %s", s.TapSide, s.ProcessName, s.RequestResource, s.ResponseStatus)
		}
		t.Fatalf("%d spans of %s in the store (want 4 eBPF + 2 packet), curl span found: %v", n, path, seed != nil)
	}
	tr, err := trace.Assemble(context.Background(), r, trace.Config{}, fmt.Sprint(seed.SpanID), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Spans) != 6 {
		t.Fatalf("trace has %d spans, want 6", len(tr.Spans))
	}
	// Expected chain by tap side and process (packet spans on lo have none).
	want := []string{"c-p curl", "local ", "s-p python3", "c-p python3", "local ", "s-p python3"}
	var chain []string
	for i := range tr.Spans {
		if tr.Parents[i] < 0 {
			for cur := i; cur >= 0; {
				s := tr.Spans[cur]
				chain = append(chain, s.TapSide.String()+" "+strings.SplitN(s.ProcessName, ".", 2)[0])
				next := -1
				for j, p := range tr.Parents {
					if p == cur {
						next = j
					}
				}
				cur = next
			}
		}
	}
	if strings.Join(chain, " → ") != strings.Join(want, " → ") {
		t.Fatalf("trace chain %v, want %v", chain, want)
	}
}

// testNetns creates a network namespace with lo up, deleted at cleanup.
func testNetns(t *testing.T, ns string) string {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("cannot create a network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	return ns
}

// startCollector runs the collector until cancel; done yields Run's error.
func startCollector(t *testing.T, cfg Config, log *slog.Logger) (cancel func(), done <-chan error) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	d := make(chan error, 1)
	go func() { d <- Run(ctx, cfg, log, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-d:
		cancel()
		t.Fatalf("collector: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("collector not ready after 30 s")
	}
	return cancel, d
}

// startServer runs collector/ebpf's Python test server in ns on port
// (calling down per request when set) and returns its pid once it is ready.
func startServer(t *testing.T, ns string, port int, down string) int {
	t.Helper()
	server, _ := filepath.Abs("../ebpf/testdata/runtimes/server.py")
	args := []string{"netns", "exec", ns, testenv.SysPython, "-u", server, "127.0.0.1", fmt.Sprint(port)}
	if down != "" {
		args = append(args, down)
	}
	cmd := exec.Command("ip", args...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "READY") {
	}
	go io.Copy(io.Discard, out)
	return cmd.Process.Pid
}

// metricValue is the sum of a metric's values over its label sets in a
// Prometheus text exposition.
func metricValue(text, name string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}
