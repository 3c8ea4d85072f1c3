package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/internal/kubeapi"
)

func kubeConfig(s *kubeapi.Server) *agent.Config {
	cfg := agent.Defaults()
	cfg.Node = "node1"
	cfg.Kubernetes.Enabled = "true"
	cfg.Kubernetes.APIServer, cfg.Kubernetes.TokenFile, cfg.Kubernetes.CAFile = s.URL, s.TokenFile, s.CAFile
	return &cfg
}

// without drops a verb or a resource from the rules.
func without(rules []rbacv1.PolicyRule, drop string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		r = *r.DeepCopy()
		keep := func(s []string) []string {
			var o []string
			for _, x := range s {
				if x != drop {
					o = append(o, x)
				}
			}
			return o
		}
		r.Verbs, r.Resources = keep(r.Verbs), keep(r.Resources)
		out = append(out, r)
	}
	return out
}

// TestKubernetes asks an API server on loopback (its JSON, over TLS)
// with the DaemonSet's ClusterRole: everything the collector needs is
// allowed; a role without watch, or without replicasets, and the kubelet
// fallback without nodes/proxy are named with what they cost; a refused
// token and a stopped server are named.
func TestKubernetes(t *testing.T) {
	rules, err := kubeapi.ClusterRoleRules("../../deploy/kubernetes/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := kubeapi.Start(t, rules)
	env := func(string) string { return "" }
	run := func(cfg *agent.Config) map[string]Check {
		cs := kubernetesChecks(context.Background(), cfg, env, 5*time.Second)
		for _, c := range cs {
			if !c.Remote && c.Status != Unused {
				t.Errorf("%s: not marked remote", c.Name)
			}
			t.Logf("%s %s: %s — %s", c.Status, c.Name, c.Detail, c.Cost)
		}
		return byName(cs)
	}
	want := func(cs map[string]Check, name string, st Status, detail ...string) {
		t.Helper()
		wantCheck(t, cs, name, st, detail...)
	}
	cs := run(kubeConfig(s))
	want(cs, "kubernetes API", OK, s.URL+" answers (Kubernetes v1.31.2) and accepts the credentials")
	want(cs, "kubernetes RBAC", OK, "allowed: list pods, watch pods, get apps/replicasets, get batch/jobs")

	s.SetRules(without(rules, "watch"))
	cs = run(kubeConfig(s))
	want(cs, "kubernetes RBAC", Missing, "denied: watch pods; allowed: list pods, get apps/replicasets, get batch/jobs",
		"no pod or workload names", "deploy/kubernetes/rbac.yaml grants it")
	s.SetRules(without(rules, "list"))
	cs = run(kubeConfig(s))
	want(cs, "kubernetes API", OK) // the list is forbidden, not the credentials
	want(cs, "kubernetes RBAC", Missing, "denied: list pods")
	s.SetRules(without(rules, "replicasets"))
	cs = run(kubeConfig(s))
	want(cs, "kubernetes RBAC", Degraded, "denied: get apps/replicasets", "named from their ReplicaSet's name")

	s.SetRules(rules)
	cfg := kubeConfig(s)
	cfg.Kubernetes.KubeletURL = "https://${NODE_IP}:10250/pods"
	cs = run(cfg)
	want(cs, "kubernetes RBAC", Degraded, "denied: get nodes/proxy", "no kubelet fallback", "rbac.yaml does not grant")

	cfg = kubeConfig(s)
	cfg.Kubernetes.TokenFile = filepath.Join(t.TempDir(), "token")
	os.WriteFile(cfg.Kubernetes.TokenFile, []byte("not-the-token"), 0o600)
	cs = run(cfg)
	want(cs, "kubernetes API", Missing, "refuses the credentials", "Unauthorized")
	want(cs, "kubernetes RBAC", Unknown)

	if !strings.Contains(strings.Join(s.Requests(), "\n"), "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews") {
		t.Errorf("no access review asked: %v", s.Requests())
	}
	s.Close()
	cs = run(kubeConfig(s))
	want(cs, "kubernetes API", Missing, s.URL, "connection refused")

	cfg = kubeConfig(s)
	cfg.Kubernetes.Enabled = "auto"
	cfg.Kubernetes.APIServer = ""
	cs = run(cfg)
	want(cs, "kubernetes API", Unused, "not in a pod")
}
