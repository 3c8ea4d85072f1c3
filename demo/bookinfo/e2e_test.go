//go:build linux

package bookinfo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
func TestBookinfoEndToEnd(t *testing.T) { runBookinfoEndToEnd(t, nil) }

// runBookinfoEndToEnd is the test; with a bucket (e2e_bucket_test.go) the
// collectors upload to it and the plugin reads the bucket only.
func runBookinfoEndToEnd(t *testing.T, bk *bucketMode) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, eBPF, AF_PACKET")
	}
	for _, b := range []string{"nginx", "python3", "ruby", "java", "javac", "node", "curl"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (bash .ci/install)", b)
		}
	}
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
	if bk != nil {
		env = append(env, bk.env(t)...)
	}
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
	opts := pluginclient.Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
		JSONData: map[string]any{"dataDirs": dataDirs}}
	if bk != nil {
		opts.JSONData, opts.SecureJSONData = bk.settings(t)
	}
	client, err := pluginclient.Start(filepath.Join(bin, "gpx_zerotrace"), opts)
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
	if bk != nil {
		bk.waitAndMeasure(t, client, len(all), seedOf)
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
