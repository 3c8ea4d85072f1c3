//go:build linux

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// TestUnknownCgroupLayout: two servers in a cgroup under a kubepods path that
// names no container (an unknown layout) serve requests while the collector
// captures them. Their spans keep the process name, the collector warns
// once (not once per process), and capture goes on.
func TestUnknownCgroupLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root")
	}
	for _, b := range []string{"ip", "python3", "curl"} {
		if _, err := exec.LookPath(b); err != nil {
			testenv.Skip(t, "needs %s (bash .ci/install)", b)
		}
	}
	root := "/sys/fs/cgroup/unified" // hybrid hierarchy; on a pure v2 host, /sys/fs/cgroup
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		root = "/sys/fs/cgroup"
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		testenv.Skip(t, "no cgroup v2 hierarchy at %s", root)
	}
	cg := filepath.Join(root, fmt.Sprintf("kubepods-zt-%d.slice", os.Getpid()), "sandbox-unknown")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		testenv.Skip(t, "cannot create a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg); os.Remove(filepath.Dir(cg)) })

	ns := testNetns(t, fmt.Sprintf("zt-cg-%d", os.Getpid()))
	dir := t.TempDir()
	cfg := Defaults()
	cfg.Node, cfg.DataDir, cfg.MetricsAddr = "node-cg", dir, ""
	cfg.EBPF.NetNS = []string{ns}
	var logs testenv.Log
	cancel, done := startCollector(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	defer cancel()
	var pids []int
	for _, port := range []int{20181, 20182} {
		pid := startServer(t, ns, port, "")
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatalf("moving pid %d into %s: %v", pid, cg, err)
		}
		pids = append(pids, pid)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pids[0]))
	if !strings.Contains(string(b), "sandbox-unknown") {
		t.Fatalf("pid %d not in the test cgroup:\n%s", pids[0], b)
	}
	path := fmt.Sprintf("/cgroup-%d", time.Now().UnixNano())
	for _, port := range []int{20181, 20182, 20181} {
		if out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-s", "--max-time", "10",
			fmt.Sprintf("http://127.0.0.1:%d%s", port, path)).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	cancel() // the shutdown's Close of the capture takes what its ring holds
	if err := <-done; err != nil {
		t.Fatalf("collector shutdown: %v", err)
	}
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Search(context.Background(), store.SearchQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	servers := 0
	for _, s := range got {
		if s.RequestResource != path || s.TapSide != span.TapServerProcess {
			continue
		}
		servers++
		if !strings.HasPrefix(s.ProcessName, "python3") || s.Service != s.ProcessName || s.ContainerID != "" || s.Pod != "" {
			t.Errorf("server span: process %q service %q container %q pod %q", s.ProcessName, s.Service, s.ContainerID, s.Pod)
		}
	}
	if servers != 3 {
		t.Errorf("%d server spans, want 3", servers)
	}
	if n := strings.Count(logs.String(), "cgroup: no container id"); n != 1 {
		t.Errorf("unknown layout warned %d times, want once:\n%s", n, logs.String())
	}
}
