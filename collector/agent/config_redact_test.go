package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/redact"
)

// TestConfigRedact: redact.query and redact.query_keys go defaults → YAML
// → environment → flags → validation like every setting, and the
// compiled redactor is the collector's.
func TestConfigRedact(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("redact:\n  query: all\n  query_keys: [ssn, -code]\n"), 0o644)
	env := map[string]string{}
	load := func(args ...string) Config {
		t.Helper()
		cfg, err := Load(args, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// Defaults: the sensitive keys.
	d := load()
	if d.Redact.Query != "" || d.Redactor().Mode() != redact.Keys || !slices.Equal(d.Redactor().Keys(), redact.Default().Keys()) {
		t.Errorf("defaults: %+v %s", d.Redact, d.Redactor().Mode())
	}
	if got := d.Redactor().URL("/p?code=c&ssn=s&u=1"); got != "/p?code=REDACTED&ssn=s&u=1" {
		t.Errorf("default redactor: %q", got)
	}
	// YAML.
	env["ZEROTRACE_CONFIG"] = file
	y := load()
	if y.Redactor().Mode() != redact.All || !slices.Contains(y.Redactor().Keys(), "ssn") || slices.Contains(y.Redactor().Keys(), "code") {
		t.Errorf("YAML: %+v → %s %q", y.Redact, y.Redactor().Mode(), y.Redactor().Keys())
	}
	// The environment over YAML.
	env["ZEROTRACE_REDACT_QUERY"], env["ZEROTRACE_REDACT_QUERY_KEYS"] = "keys", "ssn, -key,"
	e := load()
	if got := e.Redactor().URL("/p?code=c&ssn=s&sort_key=k"); e.Redact.Query != "keys" || got != "/p?code=REDACTED&ssn=REDACTED&sort_key=k" {
		t.Errorf("environment: %+v → %q", e.Redact, got)
	}
	// Flags over the environment.
	f := load("--redact-query", "none", "--redact-query-keys", "-session")
	if got := f.Redactor().URL("http://u:p@h/p?token=t"); f.Redactor().Mode() != redact.None || got != "http://REDACTED:REDACTED@h/p?token=t" ||
		slices.Contains(f.Redactor().Keys(), "session") || !slices.Contains(f.Redactor().Keys(), "key") {
		t.Errorf("flags: %+v → %q %q", f.Redact, got, f.Redactor().Keys())
	}
	// Validation names the setting.
	for args, want := range map[string]string{
		"--redact-query some":                      "redact.query",
		"--redact-query-keys -nosuchkey":           "redact.query_keys",
		"--redact-query-keys to=ken":               "redact.query_keys",
		"--redact-query all --redact-query-keys -": "redact.query_keys",
	} {
		if _, err := Load(strings.Fields(args), func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %s", args, err, want)
		}
	}
	os.WriteFile(file, []byte("redact:\n  qeury: all\n"), 0o644)
	if _, err := Load(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "qeury") {
		t.Errorf("unknown YAML key: %v", err)
	}
}
