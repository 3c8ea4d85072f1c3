package packaging

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/zerotrace/zerotrace/pkg/plugin"
)

// The shapes below follow Grafana's provisioning readers (apiVersion 1):
// pkg/services/provisioning/datasources and .../dashboards. Decoding is strict,
// so a misspelt key fails here instead of being ignored by Grafana.

type dsFile struct {
	APIVersion  int64 `yaml:"apiVersion"`
	Datasources []struct {
		Name           string         `yaml:"name"`
		Type           string         `yaml:"type"`
		UID            string         `yaml:"uid"`
		Access         string         `yaml:"access"`
		OrgID          int64          `yaml:"orgId"`
		URL            string         `yaml:"url"`
		IsDefault      bool           `yaml:"isDefault"`
		Editable       bool           `yaml:"editable"`
		Version        int            `yaml:"version"`
		JSONData       map[string]any `yaml:"jsonData"`
		SecureJSONData map[string]any `yaml:"secureJsonData"`
	} `yaml:"datasources"`
	DeleteDatasources []struct {
		Name  string `yaml:"name"`
		OrgID int64  `yaml:"orgId"`
	} `yaml:"deleteDatasources"`
}

type dashFile struct {
	APIVersion int64 `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		Type                  string `yaml:"type"`
		OrgID                 int64  `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		FolderUID             string `yaml:"folderUid"`
		Editable              bool   `yaml:"editable"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int64  `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func strictDecode(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s is not valid Grafana provisioning: %v", p, err)
	}
}

func TestProvisioning(t *testing.T) {
	root := repoRoot(t)
	var ds dsFile
	strictDecode(t, filepath.Join(root, "provisioning/datasources/zerotrace.yaml"), &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: apiVersion %d, %d data sources; want 1 and 1", ds.APIVersion, len(ds.Datasources))
	}
	d := ds.Datasources[0]
	if d.Type != PluginID || d.Name == "" || d.UID == "" || d.Access != "proxy" {
		t.Errorf("data source %+v: want type %s, a name, a uid and access proxy", d, PluginID)
	}
	dirs, ok := d.JSONData["dataDirs"].([]any)
	if !ok || len(dirs) == 0 {
		t.Fatalf("jsonData.dataDirs must be a non-empty list, have %#v", d.JSONData["dataDirs"])
	}
	for _, dir := range dirs {
		if s, ok := dir.(string); !ok || !strings.HasPrefix(s, "/") {
			t.Errorf("data directory %#v is not an absolute path", dir)
		}
	}

	var df dashFile
	strictDecode(t, filepath.Join(root, "provisioning/dashboards/dashboards.yaml"), &df)
	if df.APIVersion != 1 || len(df.Providers) != 1 {
		t.Fatalf("dashboards: apiVersion %d, %d providers; want 1 and 1", df.APIVersion, len(df.Providers))
	}
	pr := df.Providers[0]
	if pr.Type != "file" || pr.Options.Path == "" {
		t.Fatalf("provider %+v: want type file with options.path", pr)
	}
	// docker-compose mounts ./provisioning at /etc/grafana/provisioning: the
	// provider path must point into that mount, at the folder holding the dashboard.
	const mount = "/etc/grafana/provisioning/"
	if !strings.HasPrefix(pr.Options.Path, mount) {
		t.Fatalf("provider path %s is outside the provisioning mount %s", pr.Options.Path, mount)
	}
	local := filepath.Join(root, "provisioning", strings.TrimPrefix(pr.Options.Path, mount))
	dash, err := os.ReadFile(filepath.Join(local, "distributed-tracing.json"))
	if err != nil {
		t.Fatalf("provider path %s does not hold the dashboard: %v", pr.Options.Path, err)
	}
	if err := CheckDashboard(dash, PluginID); err != nil {
		t.Error(err)
	}
	bundled, err := os.ReadFile(filepath.Join(root, "src/dashboards/distributed-tracing.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dash, bundled) {
		t.Error("provisioning/dashboards/distributed-tracing.json differs from the dashboard the plugin bundles (src/dashboards): keep them identical")
	}
	compose, err := os.ReadFile(filepath.Join(root, ".config/docker-compose-base.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(compose), "../provisioning:"+strings.TrimSuffix(mount, "/")) {
		t.Error("docker-compose no longer mounts ./provisioning at " + mount)
	}
}

// traceViewKeys are the jsonData keys Grafana's trace view reads and the
// keys of each (TraceToLogsOptionsV2, TraceToMetricsOptions,
// TraceToProfilesOptions, SpanBarOptions, NodeGraphOptions); anything else
// there is silently ignored by Grafana.
var traceViewKeys = map[string][]string{
	"tracesToLogsV2":   {"datasourceUid", "tags", "spanStartTimeShift", "spanEndTimeShift", "filterByTraceID", "filterBySpanID", "query", "customQuery"},
	"tracesToMetrics":  {"datasourceUid", "tags", "queries", "spanStartTimeShift", "spanEndTimeShift"},
	"tracesToProfiles": {"datasourceUid", "tags", "query", "profileTypeId", "customQuery"},
	"spanBar":          {"type", "tag"},
	"nodeGraph":        {"enabled"},
}

// traceViewProblems lists trace-view settings Grafana would not read.
func traceViewProblems(jd map[string]any) []string {
	var out []string
	for key, allowed := range traceViewKeys {
		v, ok := jd[key]
		if !ok {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			out = append(out, fmt.Sprintf("jsonData.%s is %T, want a map", key, v))
			continue
		}
		for k := range m {
			if !slices.Contains(allowed, k) {
				out = append(out, fmt.Sprintf("jsonData.%s.%s is not a key Grafana reads (%v)", key, k, allowed))
			}
		}
	}
	return out
}

// TestTraceLinksExample: the example of trace-to-logs/metrics/profiles
// settings decodes as Grafana's provisioning does and uses only keys
// Grafana reads; so does the provisioned data source.
func TestTraceLinksExample(t *testing.T) {
	root := repoRoot(t)
	for _, f := range []string{"provisioning/examples/trace-links.yaml", "provisioning/datasources/zerotrace.yaml"} {
		var ds dsFile
		strictDecode(t, filepath.Join(root, f), &ds)
		if len(ds.Datasources) != 1 || ds.Datasources[0].Type != PluginID {
			t.Fatalf("%s: want one %s data source", f, PluginID)
		}
		jd := ds.Datasources[0].JSONData
		for _, p := range traceViewProblems(jd) {
			t.Errorf("%s: %s", f, p)
		}
		if f == "provisioning/examples/trace-links.yaml" {
			for key := range traceViewKeys {
				if jd[key] == nil {
					t.Errorf("%s: no %s example", f, key)
				}
			}
		}
	}
	// The check itself: a misspelt key is found.
	if p := traceViewProblems(map[string]any{"tracesToLogsV2": map[string]any{"filterBySpanId": true}}); len(p) != 1 {
		t.Errorf("a misspelt trace-to-logs key: %v", p)
	}
}

// TestMetricsListed: the dashboard check knows every metric the backend
// computes, and no other.
func TestMetricsListed(t *testing.T) {
	names := plugin.MetricNames()
	if len(names) != len(Metrics) {
		t.Errorf("packaging lists %d metrics, the plugin computes %v", len(Metrics), names)
	}
	for _, m := range names {
		if !Metrics[m] {
			t.Errorf("metric %s is not in packaging.Metrics", m)
		}
	}
}

func TestDashboardPanels(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "src/dashboards/distributed-tracing.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The dashboard: recent calls table, traces panel, node graph, RED panels.
	for _, want := range []string{`"type": "table"`, `"type": "traces"`, `"type": "nodeGraph"`, `"type": "timeseries"`, `"name": "namespace"`, `"name": "service"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
}
