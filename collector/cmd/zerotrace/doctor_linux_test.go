//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/collector/doctor"
	"github.com/zerotrace/zerotrace/internal/kubeapi"
	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/internal/testenv"
)

// doctorChecks are the checks `zerotrace doctor` reports, in order.
var doctorChecks = []string{"kernel", "btf", "kfunc bpf_rdonly_cast", "tracefs", "capabilities", "memlock",
	"bpf map task storage", "bpf map ring buffer", "bpf map LRU hash", "bpf map per-CPU array",
	"bpf helper bpf_task_storage_get (tracepoint programs)", "bpf helper bpf_ringbuf_output (tracepoint programs)",
	"bpf helper bpf_get_current_task_btf (tracepoint programs)", "bpf helper bpf_find_vma (tracepoint programs)",
	"bpf helper bpf_get_attach_cookie (kprobe programs)", "bpf helper bpf_task_pt_regs (kprobe programs)",
	"programs load", "attach tracepoint syscalls:*", "attach tp_btf sched:sched_waking", "attach uprobe", "attach uretprobe",
	"ring buffer read", "attach fentry/fexit", "attach kprobe", "packet interfaces", "AF_PACKET", "packet fanout",
	"cgroup layout", "containers", "pid namespace", "data directory",
	"object store reachable", "object store credentials", "object store writable", "kubernetes API", "kubernetes RBAC"}

// lines maps each check's name to its line of the text report.
func lines(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(l, "node ") {
			continue
		}
		name, _, ok := strings.Cut(strings.TrimSpace(l[len(f[0]):]), ": ")
		if !ok {
			t.Errorf("line %q has no name", l)
		}
		m[name] = l
	}
	return m
}

// TestDoctor runs `zerotrace doctor` with a configuration that uses
// everything (packets on lo, SeaweedFS as the object store, an API server
// on loopback with the DaemonSet's RBAC): as root here every check is ok
// (fentry and kprobes unused) and it exits 0, in text and in JSON. As
// nobody it exits 1 naming the missing capabilities. A wrong secret key
// and a stopped object store are named and fail it, unless --fail-on
// node.
func TestDoctor(t *testing.T) {
	testenv.RequireRoot(t)
	base, err := os.MkdirTemp("", "zerotrace-doctor-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	c := newRunner(t, base)
	s3 := seaweedtest.Start(t)
	s3.Client(t, "doctor-cli")
	rules, err := kubeapi.ClusterRoleRules("../../../deploy/kubernetes/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	api := kubeapi.Start(t, rules)
	data := filepath.Join(base, "data")
	os.Mkdir(data, 0o755)
	os.Chown(data, nobody, nobody) // the nobody run finds it writable: what it lacks is capabilities
	conf := filepath.Join(base, "collect.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`node: node1
data_dir: %s
store: {retention_age: 24h, disk_budget: 1073741824, min_free: 1048576}
packet:
  interfaces: [{pattern: lo, role: local}]
object_store: {url: s3://doctor-cli/cluster-a, endpoint: %q, path_style: true}
kubernetes: {enabled: "true", api_server: %q, token_file: %s, ca_file: %s}
`, data, s3.Endpoint, api.URL, api.TokenFile, api.CAFile)), 0o644)
	// nobody reads the token and the CA, as a pod's user reads its
	// service account's: t.TempDir makes the test's directory private.
	for d := filepath.Dir(api.TokenFile); d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	keys := []string{"AWS_ACCESS_KEY_ID=" + seaweedtest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + seaweedtest.SecretKey}

	r := c.run(0, keys, "doctor", "--config", conf)
	t.Logf("as root:\n%s%s", r.stdout, r.stderr)
	got := lines(t, r.stdout)
	if r.code != 0 || len(got) != len(doctorChecks) {
		t.Errorf("as root: exit %d, %d checks, want 0 and %d", r.code, len(got), len(doctorChecks))
	}
	for _, name := range doctorChecks {
		want := "ok "
		if strings.HasPrefix(name, "attach fentry") || name == "attach kprobe" {
			want = "unused "
		}
		if !strings.HasPrefix(got[name], want) {
			t.Errorf("as root: %s: %q, want %q", name, got[name], want)
		}
	}
	r = c.run(0, keys, "doctor", "--config", conf, "--json")
	var rep struct {
		doctor.Report
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || !rep.OK || rep.Node != "node1" || len(rep.Checks) != len(doctorChecks) {
		t.Errorf("--json: exit %d, %v, %+v", r.code, err, rep)
	}
	for i, ch := range rep.Checks {
		if ch.Name != doctorChecks[i] || ch.Detail == "" || (ch.Status != doctor.OK && ch.Status != doctor.Unused) {
			t.Errorf("--json check %d: %+v", i, ch)
		}
	}

	r = c.run(nobody, keys, "doctor", "--config", conf)
	t.Logf("as nobody:\n%s%s", r.stdout, r.stderr)
	got = lines(t, r.stdout)
	if r.code != 1 || !strings.Contains(r.stderr, "doctor: missing: capabilities, programs load, AF_PACKET") {
		t.Errorf("as nobody: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, cap := range []string{"lacks CAP_BPF (", "CAP_PERFMON (", "CAP_NET_RAW (", "CAP_SYS_PTRACE (", "CAP_DAC_READ_SEARCH ("} {
		if !strings.HasPrefix(got["capabilities"], "missing ") || !strings.Contains(got["capabilities"], cap) {
			t.Errorf("as nobody: capabilities line lacks %q: %q", cap, got["capabilities"])
		}
	}
	for _, name := range []string{"data directory", "object store writable", "kubernetes RBAC"} {
		if !strings.HasPrefix(got[name], "ok ") {
			t.Errorf("as nobody: %q", got[name])
		}
	}

	wrong := []string{"AWS_ACCESS_KEY_ID=" + seaweedtest.AccessKey, "AWS_SECRET_ACCESS_KEY=not-the-secret"}
	r = c.run(0, wrong, "doctor", "--config", conf)
	got = lines(t, r.stdout)
	if r.code != 1 || !strings.Contains(r.stderr, "doctor: missing: object store credentials\n") ||
		!strings.Contains(got["object store credentials"], "missing   object store credentials: access key "+seaweedtest.AccessKey+" from environment: the object store refused the credentials") {
		t.Errorf("wrong key: exit %d, %q\n%s", r.code, r.stderr, got["object store credentials"])
	}
	if r := c.run(0, wrong, "doctor", "--config", conf, "--fail-on", "node"); r.code != 0 {
		t.Errorf("wrong key, --fail-on node: exit %d: %s", r.code, r.stderr)
	}
	s3.Stop()
	r = c.run(0, keys, "doctor", "--config", conf)
	got = lines(t, r.stdout)
	if r.code != 1 || !strings.Contains(r.stderr, "doctor: missing: object store reachable\n") ||
		!strings.Contains(got["object store reachable"], "s3://doctor-cli/cluster-a at "+s3.Endpoint+": the object store is unreachable") {
		t.Errorf("stopped object store: exit %d, %q\n%s", r.code, r.stderr, got["object store reachable"])
	}
	t.Logf("stopped object store: %s", got["object store reachable"])
	if r := c.run(0, keys, "doctor", "--config", conf, "--fail-on=node"); r.code != 0 {
		t.Errorf("stopped object store, --fail-on node: exit %d: %s", r.code, r.stderr)
	}
	if r := c.run(0, keys, "doctor", "--config", conf, "--fail-on", "everything"); r.code != 2 {
		t.Errorf("--fail-on everything: exit %d, want 2 (usage)", r.code)
	}
}
