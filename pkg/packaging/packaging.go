package packaging

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// PluginID is the id in src/plugin.json.
const PluginID = "zerotrace-tracing-datasource"

// Platform is one GOOS/GOARCH the backend is built for.
type Platform struct{ OS, Arch string }

// Platforms are the targets of a release: Linux amd64 and arm64 are required,
// darwin and windows are built because the backend compiles for them.
var Platforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"},
}

// Required are the platforms Check insists on.
var Required = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}

// ExecutableName is the SDK's name for the backend binary of a platform.
func ExecutableName(exe string, p Platform) string {
	n := fmt.Sprintf("%s_%s_%s", exe, p.OS, p.Arch)
	if p.OS == "windows" {
		n += ".exe"
	}
	return n
}

// BuildBackends compiles the module's ./pkg main package into distDir for each
// platform, named after the executable in distDir/plugin.json.
func BuildBackends(ctx context.Context, moduleDir, distDir string, platforms []Platform) error {
	meta, err := readPluginJSON(filepath.Join(distDir, "plugin.json"))
	if err != nil {
		return fmt.Errorf("reading built plugin.json (run npm run build first): %w", err)
	}
	if meta.Executable == "" {
		return errors.New("plugin.json has no executable")
	}
	for _, p := range platforms {
		out := filepath.Join(distDir, ExecutableName(meta.Executable, p))
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-w -s", "-o", out, "./pkg")
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), "GOOS="+p.OS, "GOARCH="+p.Arch, "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building backend for %s/%s: %w\n%s", p.OS, p.Arch, err, b)
		}
	}
	return nil
}

// Zip writes every file of distDir into out under the folder PluginID/,
// keeping the executable bit of the binaries. Source maps are left out.
func Zip(distDir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("creating zip: %w", err)
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(distDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".map") {
			return err
		}
		rel, err := filepath.Rel(distDir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		h.Name = path.Join(PluginID, filepath.ToSlash(rel))
		h.Method = zip.Deflate
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("writing zip %s: %w", out, err)
	}
	return nil
}

type pluginJSON struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Backend    bool   `json:"backend"`
	Alerting   bool   `json:"alerting"`
	Executable string `json:"executable"`
	Info       struct {
		Version string `json:"version"`
		Updated string `json:"updated"`
		Logos   struct {
			Small string `json:"small"`
			Large string `json:"large"`
		} `json:"logos"`
	} `json:"info"`
	Includes []struct {
		Type string `json:"type"`
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"includes"`
	Dependencies struct {
		GrafanaDependency string `json:"grafanaDependency"`
	} `json:"dependencies"`
}

func readPluginJSON(p string) (pluginJSON, error) {
	var m pluginJSON
	b, err := os.ReadFile(p)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parsing %s: %w", p, err)
	}
	return m, nil
}

var (
	// Grafana's plugin id rule: <org>-<name>-<type>.
	idPattern     = regexp.MustCompile(`^[0-9a-z]+-([0-9a-z]+-)?(app|panel|datasource)$`)
	semverPattern = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

// PanelTypes are the core Grafana panels the dashboards may use.
var PanelTypes = map[string]bool{"table": true, "traces": true, "nodeGraph": true, "timeseries": true, "text": true, "row": true, "stat": true}

// Check opens the zip at p and returns every problem found, joined.
func Check(p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return fmt.Errorf("opening zip: %w", err)
	}
	defer zr.Close()
	files := map[string]*zip.File{}
	tops := map[string]bool{}
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, "/")
		if strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
			return fmt.Errorf("unsafe path %q in zip", f.Name)
		}
		tops[strings.SplitN(name, "/", 2)[0]] = true
		if !f.FileInfo().IsDir() {
			files[name] = f
		}
	}
	var errs []error
	if len(tops) != 1 {
		var names []string
		for t := range tops {
			names = append(names, t)
		}
		sort.Strings(names)
		errs = append(errs, fmt.Errorf("want one top-level folder, have %v", names))
	}
	var top string
	for t := range tops {
		top = t
	}
	read := func(name string) ([]byte, error) {
		f, ok := files[path.Join(top, name)]
		if !ok {
			return nil, fmt.Errorf("%s missing", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	raw, err := read("plugin.json")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var meta pluginJSON
	if err := json.Unmarshal(raw, &meta); err != nil {
		return errors.Join(append(errs, fmt.Errorf("plugin.json: %w", err))...)
	}
	if !idPattern.MatchString(meta.ID) {
		errs = append(errs, fmt.Errorf("plugin.json: id %q does not match %s", meta.ID, idPattern))
	}
	if top != meta.ID {
		errs = append(errs, fmt.Errorf("top-level folder %q is not the plugin id %q", top, meta.ID))
	}
	if meta.Type != "datasource" {
		errs = append(errs, fmt.Errorf("plugin.json: type %q, want datasource", meta.Type))
	}
	if !semverPattern.MatchString(meta.Info.Version) {
		errs = append(errs, fmt.Errorf("plugin.json: version %q is not filled in", meta.Info.Version))
	}
	if strings.Contains(meta.Info.Updated, "%") {
		errs = append(errs, fmt.Errorf("plugin.json: updated %q is not filled in", meta.Info.Updated))
	}
	if _, err := read("module.js"); err != nil {
		errs = append(errs, err)
	}
	for _, logo := range []string{meta.Info.Logos.Small, meta.Info.Logos.Large} {
		if _, err := read(logo); err != nil {
			errs = append(errs, fmt.Errorf("logo: %w", err))
		}
	}
	if meta.Alerting && !meta.Backend {
		errs = append(errs, errors.New("plugin.json: alerting needs a backend (Grafana evaluates alerts on the server)"))
	}
	if meta.Backend {
		if meta.Executable == "" {
			errs = append(errs, errors.New("plugin.json: backend without executable"))
		}
		found := 0
		for name, f := range files {
			base := path.Base(name)
			if !strings.HasPrefix(base, meta.Executable+"_") {
				continue
			}
			found++
			if f.Mode()&0o111 == 0 {
				errs = append(errs, fmt.Errorf("%s is not executable (mode %v)", base, f.Mode()))
			}
		}
		for _, p := range Required {
			if _, ok := files[path.Join(top, ExecutableName(meta.Executable, p))]; !ok {
				errs = append(errs, fmt.Errorf("backend binary %s missing", ExecutableName(meta.Executable, p)))
			}
		}
		if found == 0 {
			errs = append(errs, fmt.Errorf("no backend binary named %s_<os>_<arch>", meta.Executable))
		}
	} else if meta.Executable != "" {
		errs = append(errs, errors.New("plugin.json: executable set but backend is false"))
	}
	for _, inc := range meta.Includes {
		if inc.Type != "dashboard" {
			continue
		}
		b, err := read(inc.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("included dashboard: %w", err))
			continue
		}
		if err := CheckDashboard(b, meta.ID); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", inc.Path, err))
		}
	}
	return errors.Join(errs...)
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *dsRef          `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource *dsRef  `json:"datasource"`
	Panels     []panel `json:"panels"`
	Targets    []struct {
		Datasource *dsRef `json:"datasource"`
		QueryType  string `json:"queryType"`
		Metric     string `json:"metric"`
	} `json:"targets"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// QueryTypes are the query types the backend answers.
var QueryTypes = map[string]bool{"trace": true, "search": true, "serviceMap": true, "metrics": true}

// Metrics are the metrics a metrics query computes (plugin.MetricNames).
var Metrics = map[string]bool{"rate": true, "errors": true, "errorRatio": true, "p50": true, "p75": true, "p90": true,
	"p95": true, "p99": true, "max": true}

// CheckDashboard parses a dashboard and checks that it uses only the data
// source type id, core panel types and the backend's query types.
func CheckDashboard(b []byte, id string) error {
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("parsing dashboard: %w", err)
	}
	var errs []error
	if d.UID == "" || d.Title == "" {
		errs = append(errs, errors.New("dashboard needs a uid and a title"))
	}
	ref := func(where string, r *dsRef) {
		if r != nil && r.Type != id {
			errs = append(errs, fmt.Errorf("%s uses data source type %q", where, r.Type))
		}
	}
	for _, v := range d.Templating.List {
		ref("variable "+v.Name, v.Datasource)
		if v.Type == "datasource" {
			var q string
			if json.Unmarshal(v.Query, &q) != nil || q != id {
				errs = append(errs, fmt.Errorf("data source variable %s selects %s, want %s", v.Name, v.Query, id))
			}
		}
	}
	var walk func([]panel)
	n := 0
	walk = func(ps []panel) {
		for _, p := range ps {
			n++
			if !PanelTypes[p.Type] {
				errs = append(errs, fmt.Errorf("panel %q has type %q, not a core panel", p.Title, p.Type))
			}
			ref(fmt.Sprintf("panel %q", p.Title), p.Datasource)
			for _, t := range p.Targets {
				ref(fmt.Sprintf("panel %q target", p.Title), t.Datasource)
				if !QueryTypes[t.QueryType] {
					errs = append(errs, fmt.Errorf("panel %q queries unknown query type %q", p.Title, t.QueryType))
				}
				if t.QueryType == "metrics" && !Metrics[t.Metric] {
					errs = append(errs, fmt.Errorf("panel %q queries unknown metric %q (a metrics panel names its metric)", p.Title, t.Metric))
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if n == 0 {
		errs = append(errs, errors.New("dashboard has no panels"))
	}
	return errors.Join(errs...)
}
