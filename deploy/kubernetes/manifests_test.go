package kubernetes

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/zerotrace/zerotrace/collector/agent"
)

// strict decodes one YAML document into v, refusing unknown fields.
func strict(t *testing.T, name string, doc []byte, v any) {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type object struct {
	file string
	kind string
	doc  []byte
}

// objects reads every manifest the kustomization lists, one per document,
// and checks that no YAML file of the directory is left out.
func objects(t *testing.T) []object {
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Namespace  string   `json:"namespace"`
		Resources  []string `json:"resources"`
		Labels     []struct {
			Pairs map[string]string `json:"pairs"`
		} `json:"labels"`
		Images []struct {
			Name    string `json:"name"`
			NewTag  string `json:"newTag"`
			NewName string `json:"newName"`
		} `json:"images"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	strict(t, "kustomization.yaml", b, &k)
	if k.Kind != "Kustomization" || k.Namespace != "zerotrace" {
		t.Fatalf("kustomization: %+v", k)
	}
	files, _ := filepath.Glob("*.yaml")
	want := slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("kustomization resources %v, files %v", got, want)
	}
	var out []object
	for _, f := range k.Resources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---\n") {
			var meta struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
				t.Fatalf("%s: no kind (%v)", f, err)
			}
			out = append(out, object{f, meta.Kind, []byte(doc)})
		}
	}
	return out
}

// The collector's capabilities: named, nothing that amounts to root on the host.
var wantCaps = []corev1.Capability{"BPF", "PERFMON", "NET_RAW", "NET_ADMIN", "SYS_RESOURCE", "SYS_PTRACE", "DAC_READ_SEARCH"}

func TestManifests(t *testing.T) {
	var (
		ds          appsv1.DaemonSet
		sa          corev1.ServiceAccount
		role        rbacv1.ClusterRole
		binding     rbacv1.ClusterRoleBinding
		collectorCM corev1.ConfigMap
		grafanaCM   corev1.ConfigMap
		ns          corev1.Namespace
	)
	kinds := map[string]int{}
	for _, o := range objects(t) {
		kinds[o.kind]++
		switch o.kind {
		case "Namespace":
			strict(t, o.file, o.doc, &ns)
		case "ServiceAccount":
			strict(t, o.file, o.doc, &sa)
		case "ClusterRole":
			strict(t, o.file, o.doc, &role)
		case "ClusterRoleBinding":
			strict(t, o.file, o.doc, &binding)
		case "DaemonSet":
			strict(t, o.file, o.doc, &ds)
		case "ConfigMap":
			var cm corev1.ConfigMap
			strict(t, o.file, o.doc, &cm)
			if cm.Name == "zerotrace-collector" {
				collectorCM = cm
			} else {
				grafanaCM = cm
			}
		default:
			t.Errorf("%s: unexpected kind %s", o.file, o.kind)
		}
	}
	want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "DaemonSet": 1, "ConfigMap": 2}
	if !mapsEqual(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}

	// RBAC: get/list/watch on pods and their owners, nothing else.
	allowed := map[string][]string{"": {"pods"}, "apps": {"replicasets", "deployments", "statefulsets", "daemonsets"}, "batch": {"jobs", "cronjobs"}}
	seen := map[string]bool{}
	for _, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("rule %+v: non-resource URLs or names", r)
		}
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("rule %+v: verb %s", r, v)
			}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if !slices.Contains(allowed[g], res) {
					t.Errorf("rule grants %q/%s", g, res)
				}
				seen[g+"/"+res] = true
			}
		}
	}
	if len(seen) != 7 || !seen["/pods"] || !seen["apps/replicasets"] || !seen["batch/jobs"] {
		t.Errorf("rules cover %v", seen)
	}
	if binding.RoleRef.Kind != "ClusterRole" || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 ||
		binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != ns.Name {
		t.Errorf("binding %+v does not bind %s to %s/%s", binding, role.Name, ns.Name, sa.Name)
	}

	// The DaemonSet: named capabilities, not privileged.
	spec := ds.Spec.Template.Spec
	if ds.Namespace != ns.Name || sa.Namespace != ns.Name || collectorCM.Namespace != ns.Name || spec.ServiceAccountName != sa.Name {
		t.Errorf("namespace or service account mismatch")
	}
	if !spec.HostPID || !spec.HostNetwork || spec.HostIPC {
		t.Errorf("hostPID %v hostNetwork %v hostIPC %v, want true true false", spec.HostPID, spec.HostNetwork, spec.HostIPC)
	}
	if !mapsEqual(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("selector %v does not match the template's labels %v", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil {
		t.Fatalf("security context %+v", sc)
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, wantCaps) {
		t.Errorf("capabilities drop %v add %v, want drop ALL add %v", sc.Capabilities.Drop, sc.Capabilities.Add, wantCaps)
	}
	if spec.SecurityContext != nil && spec.SecurityContext.SELinuxOptions != nil {
		t.Error("pod SELinux options")
	}
	hostPaths := map[string]bool{"/var/lib/zerotrace": true, "/sys/kernel/tracing": true, "/sys/kernel/debug": true, "/sys/fs/bpf": true, "/sys/fs/cgroup": true}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
		if v.HostPath != nil && !hostPaths[v.HostPath.Path] {
			t.Errorf("host path %s", v.HostPath.Path)
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if _, ok := vols[m.Name]; !ok {
			t.Errorf("mount %s: no such volume", m.Name)
		}
		mounts[m.MountPath] = m
		if v := vols[m.Name]; v.HostPath != nil && v.HostPath.Path != m.MountPath {
			t.Errorf("host path %s mounted at %s", v.HostPath.Path, m.MountPath)
		}
	}
	for _, p := range []string{"/sys/kernel/tracing", "/sys/kernel/debug", "/sys/fs/cgroup"} {
		if m, ok := mounts[p]; !ok || !m.ReadOnly {
			t.Errorf("%s: mounted %v read-only %v", p, ok, m.ReadOnly)
		}
	}
	if _, ok := mounts["/var/lib/zerotrace"]; !ok {
		t.Error("no data directory")
	}

	// Resources match the measured figures (docs/capture.md: peak RSS 184 MB,
	// 0.105 core per 10 k spans/s) with headroom.
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Memory().Cmp(resource.MustParse("200Mi")) < 0 || lim.Memory().Cmp(resource.MustParse("400Mi")) < 0 ||
		req.Cpu().Cmp(resource.MustParse("100m")) < 0 || lim.Cpu().Cmp(*req.Cpu()) <= 0 {
		t.Errorf("resources %+v", c.Resources)
	}

	// The collector's configuration: the file the args name, decoded by the
	// collector's own loader (unknown keys refused), /healthz on its port.
	conf, ok := collectorCM.Data["collect.yaml"]
	if !ok {
		t.Fatal("collector ConfigMap lacks collect.yaml")
	}
	cfgPath := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	if m, ok := mounts[filepath.Dir(cfgPath)]; !ok || vols[m.Name].ConfigMap == nil || vols[m.Name].ConfigMap.Name != collectorCM.Name ||
		filepath.Base(cfgPath) != "collect.yaml" || c.Args[0] != "collect" {
		t.Errorf("args %v do not name the ConfigMap's collect.yaml", c.Args)
	}
	file := filepath.Join(t.TempDir(), "collect.yaml")
	os.WriteFile(file, []byte(conf), 0o644)
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = "from-" + e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["ZEROTRACE_NODE"] != "from-spec.nodeName" {
		t.Errorf("ZEROTRACE_NODE is not the pod's node: %v", env)
	}
	args := slices.Clone(c.Args[1:])
	args[slices.Index(args, cfgPath)] = file // the ConfigMap's file where the mount would put it
	cfg, err := agent.Load(args, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("collector config: %v", err)
	}
	if cfg.Node != "from-spec.nodeName" || cfg.Kubernetes.Enabled != "true" || cfg.DataDir != "/var/lib/zerotrace" {
		t.Errorf("collector config %+v", cfg)
	}
	// Both disk limits are stated (docs/capture.md, "Disk space"): a budget,
	// and the default free space, which keeps the node off DiskPressure.
	if cfg.Store.DiskBudget <= 0 || cfg.Store.MinFree != 0 || !strings.Contains(conf, "\n  min_free: 0") {
		t.Errorf("store disk limits: disk_budget %d, min_free %d", cfg.Store.DiskBudget, cfg.Store.MinFree)
	}
	port := c.Ports[0]
	if !strings.HasSuffix(cfg.MetricsAddr, ":9465") || port.ContainerPort != 9465 {
		t.Errorf("metrics on %s, port %d", cfg.MetricsAddr, port.ContainerPort)
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != port.Name {
			t.Errorf("probe %+v", p)
		}
	}

	// Grafana provisioning: the plugin's data source in directory mode, on
	// the collector's data directory.
	var prov struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			Type      string `json:"type"`
			UID       string `json:"uid"`
			Access    string `json:"access"`
			IsDefault bool   `json:"isDefault"`
			JSONData  struct {
				DataDirs []string `json:"dataDirs"`
			} `json:"jsonData"`
		} `json:"datasources"`
	}
	strict(t, "grafana provisioning", []byte(grafanaCM.Data["zerotrace.yaml"]), &prov)
	var plugin struct {
		ID string `json:"id"`
	}
	pj, err := os.ReadFile("../../src/plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(pj, &plugin)
	if prov.APIVersion != 1 || len(prov.Datasources) != 1 || prov.Datasources[0].Type != plugin.ID ||
		!slices.Equal(prov.Datasources[0].JSONData.DataDirs, []string{cfg.DataDir}) {
		t.Errorf("grafana provisioning %+v", prov)
	}
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
