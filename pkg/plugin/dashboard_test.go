package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/experimental"

	"github.com/zerotrace/zerotrace/internal/spangen"
)

// dashboardVars are the values the golden run gives a provisioned
// dashboard's variables: one namespace, two services (a multi-value
// selection, sent as a list), and a trace id found by a search.
func dashboardVars(traceID string) map[string]any {
	return map[string]any{"namespace": "bookinfo", "service": []string{"productpage", "reviews"}, "traceId": traceID}
}

var varRef = regexp.MustCompile(`^\$\{?(\w+)\}?$`)

// interpolate gives a target's string fields the variables' values, as the
// frontend's applyTemplateVariables does; an unknown variable fails.
func interpolate(t *testing.T, target map[string]any, vars map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range target {
		if s, ok := v.(string); ok && strings.Contains(s, "$") {
			m := varRef.FindStringSubmatch(s)
			if m == nil || vars[m[1]] == nil {
				t.Fatalf("target field %s = %q: not a variable the golden run knows (%v)", k, s, vars)
			}
			v = vars[m[1]]
		}
		out[k] = v
	}
	return out
}

// TestDashboardGoldenFrames runs every query of every dashboard the plugin
// provisions against generated data and writes what the backend answers to
// testdata/golden/dashboards/<dashboard>/panel-<id>-<refId>.jsonc. The jest
// test src/dashboards.test.ts checks every field the dashboard refers to
// against these frames (go test ./pkg/plugin -update rewrites them).
func TestDashboardGoldenFrames(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, spangen.New(spangen.Config{Seed: 11, Start: t0, Interval: 200 * time.Millisecond, ErrorRate: 0.25}).Next(6))
	d := newDS(t, dir)
	from, to := t0.Add(-5*time.Second), t0.Add(5*time.Second)
	sr := run(t, d, map[string]any{"queryType": "search", "limit": 1}, from, to)
	if sr.Error != nil || sr.Frames[0].Rows() != 1 {
		t.Fatalf("search for a trace id: %v", sr.Error)
	}
	vars := dashboardVars(sr.Frames[0].Fields[0].At(0).(string))
	files, _ := filepath.Glob(filepath.Join("..", "..", "src", "dashboards", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards in src/dashboards")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			Panels []struct {
				ID      int              `json:"id"`
				Targets []map[string]any `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		golden := filepath.Join("testdata", "golden", "dashboards", name)
		os.MkdirAll(golden, 0o755)
		n := 0
		for _, p := range dash.Panels {
			for _, target := range p.Targets {
				q := interpolate(t, target, vars)
				delete(q, "datasource")
				r := run(t, d, q, from, to)
				if r.Error != nil || len(r.Frames) == 0 || r.Frames[0].Rows() == 0 {
					t.Fatalf("%s panel %d %s: %v, %d frames", name, p.ID, target["refId"], r.Error, len(r.Frames))
				}
				ref := fmt.Sprint(target["refId"])
				for _, f := range r.Frames {
					f.RefID = ref
				}
				experimental.CheckGoldenJSONResponse(t, golden, fmt.Sprintf("panel-%d-%s", p.ID, ref), &r, *update)
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s: no queries", name)
		}
	}
}
