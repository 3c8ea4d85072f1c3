//go:build linux

package bookinfo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/plugin/pluginclient"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/spangen"
	"github.com/zerotrace/zerotrace/pkg/store"
)

var pods = []string{"loadgen", "productpage", "ratings", "details", "reviews"}

// TestBookinfoEndToEnd runs the demo, sends 20 sequential and then 16
// concurrent requests, and checks each request's trace as the plugin binary
// returns it: exactly the 38 expected spans (24 eBPF, 14 packet) with the
// expected parent of each (the tree written down in pkg/spangen/points_test.go
// and pkg/trace/assemble_test.go).
func TestBookinfoEndToEnd(t *testing.T) {
	testenv.RequireRoot(t) // network namespaces, eBPF, AF_PACKET
	testenv.RequireBinaries(t, "nginx", "python3", "ruby", "java", "javac", "node", "curl")
	run := t.TempDir()
	bin := filepath.Join(run, "bin")
	os.MkdirAll(bin, 0o755)
	for _, b := range []struct{ out, pkg string }{{"zerotrace", "./collector/cmd/zerotrace"}, {"gpx_zerotrace", "./pkg"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	// Its own namespace prefix, so that it runs beside a demo someone started.
	prefix := fmt.Sprintf("zt-demo-%d", os.Getpid())
	env := append(os.Environ(), "ZT_DEMO_RUN="+filepath.Join(run, "demo"), "ZT_BIN="+filepath.Join(bin, "zerotrace"), "ZT_DEMO_NS="+prefix)
	down := func() {
		cmd := exec.Command("bash", "down")
		cmd.Env = env
		cmd.CombinedOutput()
	}
	t.Cleanup(down)
	up := exec.Command("bash", "up")
	up.Env = env
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("demo up: %v\n%s", err, out)
	}
	inode := map[uint64]string{}
	for _, p := range pods {
		fi, err := os.Stat("/run/netns/" + prefix + "-" + p)
		if err != nil {
			t.Fatal(err)
		}
		inode[fi.Sys().(*syscall.Stat_t).Ino] = p
	}
	dataDirs := []string{filepath.Join(run, "demo", "data", "node1"), filepath.Join(run, "demo", "data", "node2")}
	client, err := pluginclient.Start(filepath.Join(bin, "gpx_zerotrace"), pluginclient.Options{PluginID: "zerotrace-tracing-datasource",
		UID: "zt", Name: "Zerotrace", JSONData: map[string]any{"dataDirs": dataDirs}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	request := func(marker string) error {
		out, err := exec.Command("ip", "netns", "exec", prefix+"-loadgen", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
			"--max-time", "20", "-H", "Host: productpage", "http://127.0.0.1:15001/productpage?m="+marker).CombinedOutput()
		if err != nil || string(out) != "200" {
			return fmt.Errorf("request %s: %v %s", marker, err, out)
		}
		return nil
	}
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var seq, conc []string
	for i := 0; i < 20; i++ {
		m := fmt.Sprintf("%s-s%d", runID, i)
		if err := request(m); err != nil {
			t.Fatal(err)
		}
		seq = append(seq, m)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		m := fmt.Sprintf("%s-c%d", runID, i)
		conc = append(conc, m)
		wg.Add(1)
		go func() { defer wg.Done(); errs <- request(m) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Second) // a batch every second, a seal every two

	r, err := store.OpenReader(dataDirs...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	all, err := r.Search(context.Background(), store.SearchQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uint64]span.Span{}
	seedOf := map[string]uint64{}
	for _, s := range all {
		byID[s.SpanID] = s
		if s.TapSide == span.TapClientProcess && s.ProcessName == "curl" {
			if i := strings.Index(s.RequestResource, "m="); i >= 0 {
				seedOf[s.RequestResource[i+2:]] = s.SpanID
			}
		}
	}
	wantParent := map[string]string{}
	for _, p := range spangen.Points() {
		wantParent[p.Label] = p.Parent
	}
	label := func(s span.Span) string {
		hop := ""
		switch {
		case strings.HasPrefix(s.RequestResource, "/productpage"):
			hop = "loadgen>productpage"
		case strings.HasPrefix(s.RequestResource, "/details/"):
			hop = "productpage>details"
		case strings.HasPrefix(s.RequestResource, "/reviews/"):
			hop = "productpage>reviews"
		case strings.HasPrefix(s.RequestResource, "/ratings/"):
			hop = "reviews>ratings"
		}
		var who string
		if s.SignalSource == span.SourcePacket {
			switch {
			case strings.HasPrefix(s.CaptureNIC, "v-"):
				who = strings.TrimPrefix(s.CaptureNIC, "v-") + "-vnic"
			case strings.HasPrefix(s.CaptureNIC, "underlay"):
				who = "node" + strings.TrimPrefix(s.CaptureNIC, "underlay") + "-nic"
			}
		} else {
			who = inode[s.NetNS]
			if s.ProcessName == "nginx" {
				who += "-proxy"
			}
		}
		return hop + ": " + who + " " + s.TapSide.String()
	}
	check := func(name string, markers []string) {
		var found, correct, total int
		for _, m := range markers {
			total += 38
			seed, ok := seedOf[m]
			if !ok {
				t.Errorf("%s %s: curl's span not stored", name, m)
				continue
			}
			resp, err := client.Query(context.Background(), map[string]any{"queryType": "trace", "spanId": strconv.FormatUint(seed, 10)},
				time.Now().Add(-time.Hour), time.Now())
			if err != nil || resp.Error != "" || len(resp.Frames) == 0 {
				t.Errorf("%s %s: trace query: %v %s", name, m, err, resp.Error)
				continue
			}
			f := resp.Frames[0]
			ids, _ := f.FieldByName("spanID")
			parents, _ := f.FieldByName("parentSpanID")
			services, _ := f.FieldByName("serviceName")
			labels := map[string]string{} // span id → label
			seen := map[string]int{}
			var ebpf, pkt int
			for i := 0; i < ids.Len(); i++ {
				id := ids.At(i).(string)
				n, _ := strconv.ParseUint(id, 10, 64)
				s, ok := byID[n]
				if !ok {
					t.Errorf("%s %s: span %s of the trace is not in the store", name, m, id)
					continue
				}
				if !strings.Contains(s.RequestResource, "m="+m) {
					t.Errorf("%s %s: foreign span %s (%s %s)", name, m, label(s), s.RequestResource, s.TapSide)
					continue
				}
				labels[id] = label(s)
				seen[label(s)]++
				// Named by pod and workload (the collectors' netns → pod mapping).
				pod, proxy := inode[s.NetNS], s.ProcessName == "nginx"
				if s.SignalSource == span.SourcePacket {
					pod, proxy = strings.TrimPrefix(s.CaptureNIC, "v-"), false
					if !strings.HasPrefix(s.CaptureNIC, "v-") {
						pod = ""
					}
				}
				wantSvc := pod
				if proxy {
					wantSvc += " (proxy)"
				}
				if pod == "" && (s.Pod != "" || s.Workload != "") || pod != "" && (s.Pod != pod+"-v1" || s.Workload != pod) ||
					s.SignalSource == span.SourceEBPF && (services.At(i).(string) != wantSvc || s.Flags.Has(span.FlagProxy) != proxy) {
					t.Errorf("%s %s: %q: pod %q workload %q service %q proxy %v, want pod %q-v1 service %q", name, m, label(s),
						s.Pod, s.Workload, services.At(i), s.Flags.Has(span.FlagProxy), pod, wantSvc)
				}
				if s.SignalSource == span.SourceEBPF {
					ebpf++
				} else {
					pkt++
				}
			}
			for i := 0; i < ids.Len(); i++ {
				id := ids.At(i).(string)
				l, ok := labels[id]
				if !ok {
					continue
				}
				want, known := wantParent[l]
				if !known || seen[l] != 1 {
					t.Errorf("%s %s: unexpected span %q (seen %d times)", name, m, l, seen[l])
					continue
				}
				found++
				got := ""
				if p := parents.At(i).(*string); p != nil {
					got = labels[*p]
				}
				if got == want {
					correct++
				} else {
					t.Errorf("%s %s: %q has parent %q, want %q", name, m, l, got, want)
				}
			}
			if ids.Len() != 38 || ebpf != 24 || pkt != 14 {
				t.Errorf("%s %s: %d spans (%d eBPF, %d packet), want 38 (24, 14)", name, m, ids.Len(), ebpf, pkt)
			}
		}
		fmt.Printf("bookinfo %s: completeness %d/%d (%.1f%%), correctness %d/%d (%.1f%%)\n", name, found, total,
			100*float64(found)/float64(total), correct, total, 100*float64(correct)/float64(total))
	}
	check("sequential (20 requests)", seq)
	check("concurrent (16 requests)", conc)
	checkServiceMap(t, client)

	// Teardown leaves nothing behind.
	client.Close()
	down()
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), prefix+"-") {
		t.Errorf("namespaces left after down:\n%s", out)
	}
	if out, err := exec.Command("pgrep", "-f", filepath.Join(bin, "zerotrace")+" collect").CombinedOutput(); err == nil {
		t.Errorf("collectors left after down: %s", out)
	}
	// down is idempotent and works on nothing.
	cmd := exec.Command("bash", "down")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("second down: %v %s", err, out)
	}
}

// checkServiceMap asks the plugin for the service map of the run: on real
// captured spans every service and the sidecar of its pod are nodes of their
// own (the service rules call every nginx "sidecar"), and every call pairs
// with its server (no edge ends at an address). The expected map is the
// demo's topology (docs/architecture.md): an app talks to its own sidecar,
// sidecars talk to sidecars.
func checkServiceMap(t *testing.T, client *pluginclient.Client) {
	t.Helper()
	resp, err := client.Query(context.Background(), map[string]any{"queryType": "serviceMap", "namespace": "bookinfo"},
		time.Now().Add(-time.Hour), time.Now())
	if err != nil || resp.Error != "" || len(resp.Frames) != 2 {
		t.Errorf("service map: %v %s", err, resp.Error)
		return
	}
	col := func(f int, name string) []string {
		fld, _ := resp.Frames[f].FieldByName(name)
		if fld == nil {
			t.Fatalf("service map frame %d has no field %s", f, name)
		}
		out := make([]string, fld.Len())
		for i := range out {
			out[i] = fld.At(i).(string)
		}
		return out
	}
	var wantNodes []string
	for _, app := range []string{"details", "loadgen", "productpage", "ratings", "reviews"} {
		wantNodes = append(wantNodes, app, app+" (proxy)")
	}
	if got := col(0, "id"); strings.Join(got, ",") != strings.Join(wantNodes, ",") {
		t.Errorf("service map nodes:\n got %q\nwant %q", got, wantNodes)
	}
	wantEdges := []string{
		"details (proxy) → details", "loadgen (proxy) → productpage (proxy)", "loadgen → loadgen (proxy)",
		"productpage (proxy) → details (proxy)", "productpage (proxy) → productpage",
		"productpage (proxy) → reviews (proxy)", "productpage → productpage (proxy)", "ratings (proxy) → ratings",
		"reviews (proxy) → ratings (proxy)", "reviews (proxy) → reviews", "reviews → reviews (proxy)",
	}
	src, dst := col(1, "source"), col(1, "target")
	var got []string
	for i := range src {
		got = append(got, src[i]+" → "+dst[i])
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(wantEdges, ",") {
		t.Errorf("service map edges:\n got %q\nwant %q", got, wantEdges)
	}
	fmt.Printf("bookinfo service map: %d nodes, %d edges\n", len(col(0, "id")), len(got))
}
