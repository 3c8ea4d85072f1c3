package packaging

import (
	"archive/zip"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tree is a plugin dist/ as files (name → content, mode).
type tree map[string]struct {
	body string
	mode os.FileMode
}

// validTree is the smallest dist/ that passes Check: the real plugin.json
// (version filled in as the webpack build does), the real dashboard, and
// stand-in binaries and module.js.
func validTree(t *testing.T) tree {
	root := repoRoot(t)
	pj, err := os.ReadFile(filepath.Join(root, "src/plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	pjs := strings.ReplaceAll(strings.ReplaceAll(string(pj), "%VERSION%", "1.2.3"), "%TODAY%", "2026-11-24")
	dash, err := os.ReadFile(filepath.Join(root, "src/dashboards/distributed-tracing.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tree{
		"plugin.json":                         {pjs, 0o644},
		"module.js":                           {"define([],function(){})", 0o644},
		"img/logo.svg":                        {"<svg/>", 0o644},
		"dashboards/distributed-tracing.json": {string(dash), 0o644},
		"gpx_zerotrace_linux_amd64":           {"\x7fELF", 0o755},
		"gpx_zerotrace_linux_arm64":           {"\x7fELF", 0o755},
		"gpx_zerotrace_windows_amd64.exe":     {"MZ", 0o755},
	}
}

func writeZip(t *testing.T, top string, tr tree) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plugin.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, e := range tr {
		h := &zip.FileHeader{Name: top + "/" + name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestCheckFindsEachDefect(t *testing.T) {
	edit := func(name string, f func(string) string) func(tree) {
		return func(tr tree) { e := tr[name]; e.body = f(e.body); tr[name] = e }
	}
	for _, tc := range []struct {
		name string
		top  string
		mut  func(tree)
		want string // substring of the error; "" = valid
	}{
		{"valid", PluginID, func(tree) {}, ""},
		{"top folder not the id", "zerotrace", func(tree) {}, "not the plugin id"},
		{"bad id", PluginID, edit("plugin.json", func(s string) string {
			return strings.Replace(s, `"id": "zerotrace-tracing-datasource"`, `"id": "Zerotrace_tracing"`, 1)
		}), "does not match"},
		{"version placeholder", PluginID, edit("plugin.json", func(s string) string {
			return strings.Replace(s, `"version": "1.2.3"`, `"version": "%VERSION%"`, 1)
		}), "version"},
		{"binary not executable", PluginID, func(tr tree) {
			e := tr["gpx_zerotrace_linux_amd64"]
			e.mode = 0o644
			tr["gpx_zerotrace_linux_amd64"] = e
		}, "not executable"},
		{"arm64 missing", PluginID, func(tr tree) { delete(tr, "gpx_zerotrace_linux_arm64") }, "gpx_zerotrace_linux_arm64 missing"},
		{"executable renamed", PluginID, edit("plugin.json", func(s string) string {
			return strings.Replace(s, `"executable": "gpx_zerotrace"`, `"executable": "gpx_other"`, 1)
		}), "gpx_other_linux_amd64 missing"},
		{"module.js missing", PluginID, func(tr tree) { delete(tr, "module.js") }, "module.js missing"},
		{"dashboard broken", PluginID, edit("dashboards/distributed-tracing.json", func(s string) string { return s[:len(s)/2] }), "parsing dashboard"},
		{"unknown panel", PluginID, edit("dashboards/distributed-tracing.json", func(s string) string {
			return strings.Replace(s, `"type": "nodeGraph"`, `"type": "grafana-polystat-panel"`, 1)
		}), "not a core panel"},
		{"other data source", PluginID, edit("dashboards/distributed-tracing.json", func(s string) string {
			return strings.Replace(s, `"type": "zerotrace-tracing-datasource"`, `"type": "tempo"`, 1)
		}), `data source type "tempo"`},
		{"alerting without backend", PluginID, edit("plugin.json", func(s string) string {
			return strings.Replace(s, `"backend": true`, `"backend": false`, 1)
		}), "alerting needs a backend"},
		{"metrics panel without its metric", PluginID, edit("dashboards/distributed-tracing.json", func(s string) string {
			return strings.Replace(s, `"metric": "errorRatio"`, `"metric": "error_rate"`, 1)
		}), `unknown metric "error_rate"`},
		{"unknown query type", PluginID, edit("dashboards/distributed-tracing.json", func(s string) string {
			return strings.Replace(s, `"queryType": "serviceMap"`, `"queryType": "graph"`, 1)
		}), "unknown query type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := validTree(t)
			tc.mut(tr)
			err := Check(writeZip(t, tc.top, tr))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid zip rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("defect not found, want error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestBuiltZip builds the real package the way the Package target does (from
// the webpack output in dist/ and the backend built from ./pkg), unpacks it and
// checks it as grafana-cli would, plus the binaries' architectures.
func TestBuiltZip(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the backend for two platforms; skipped in -short")
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "dist/module.js")); err != nil {
		testenv.Skip(t, "dist/module.js missing: run `npm run build` first")
	}
	dist := filepath.Join(t.TempDir(), "dist")
	if err := os.CopyFS(dist, os.DirFS(filepath.Join(root, "dist"))); err != nil {
		t.Fatal(err)
	}
	if err := BuildBackends(context.Background(), root, dist, Required); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), PluginID+".zip")
	if err := Zip(dist, out); err != nil {
		t.Fatal(err)
	}
	if err := Check(out); err != nil {
		t.Fatalf("built zip fails the install checks:\n%v", err)
	}

	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	machines := map[string]elf.Machine{
		PluginID + "/gpx_zerotrace_linux_amd64": elf.EM_X86_64,
		PluginID + "/gpx_zerotrace_linux_arm64": elf.EM_AARCH64,
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".map") {
			t.Errorf("source map %s shipped", f.Name)
		}
		want, ok := machines[f.Name]
		if !ok {
			continue
		}
		delete(machines, f.Name)
		tmp := filepath.Join(t.TempDir(), "bin")
		rc, _ := f.Open()
		b := make([]byte, f.UncompressedSize64)
		if _, err := io.ReadFull(rc, b); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		os.WriteFile(tmp, b, 0o755)
		ef, err := elf.Open(tmp)
		if err != nil {
			t.Fatalf("%s is not an ELF binary: %v", f.Name, err)
		}
		if ef.Machine != want {
			t.Errorf("%s is built for %v, want %v", f.Name, ef.Machine, want)
		}
		ef.Close()
	}
	for name := range machines {
		t.Errorf("%s not in the zip", name)
	}
	// Unpack it as grafana-cli does (into the plugins directory, modes kept)
	// and look at the result on disk.
	plugins := t.TempDir()
	for _, f := range zr.File {
		dst := filepath.Join(plugins, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			os.MkdirAll(dst, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, f.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"plugin.json", "module.js", "dashboards/distributed-tracing.json", "gpx_zerotrace_linux_amd64", "gpx_zerotrace_linux_arm64"} {
		fi, err := os.Stat(filepath.Join(plugins, PluginID, name))
		if err != nil {
			t.Errorf("unpacked plugin lacks %s: %v", name, err)
			continue
		}
		if strings.HasPrefix(name, "gpx_") && fi.Mode()&0o111 == 0 {
			t.Errorf("unpacked %s is not executable (%v)", name, fi.Mode())
		}
	}
	if ents, _ := os.ReadDir(plugins); len(ents) != 1 || ents[0].Name() != PluginID {
		t.Errorf("unpacked into %v, want one folder %s", ents, PluginID)
	}
	var meta pluginJSON
	raw, _ := os.ReadFile(filepath.Join(plugins, PluginID, "plugin.json"))
	if err := json.Unmarshal(raw, &meta); err != nil || meta.ID != PluginID {
		t.Errorf("dist/plugin.json id %q (%v)", meta.ID, err)
	}
}
