package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestTLSConfig: defaults, then YAML, then environment, then flags; a name
// longer than a comm is refused.
func TestTLSConfig(t *testing.T) {
	noEnv := func(string) string { return "" }
	cfg, err := Load(nil, noEnv)
	if err != nil || !cfg.TLS.Enabled || cfg.TLS.ExcludeProcesses != nil {
		t.Fatalf("defaults: %+v %v", cfg.TLS, err)
	}
	f := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(f, []byte("tls:\n  enabled: false\n  exclude_processes: [nginx, envoy]\n"), 0o644)
	cfg, err = Load([]string{"--config", f}, noEnv)
	if err != nil || cfg.TLS.Enabled || !reflect.DeepEqual(cfg.TLS.ExcludeProcesses, []string{"nginx", "envoy"}) {
		t.Fatalf("yaml: %+v %v", cfg.TLS, err)
	}
	env := map[string]string{"ZEROTRACE_TLS_ENABLED": "true", "ZEROTRACE_TLS_EXCLUDE_PROCESSES": "a, b"}
	cfg, err = Load([]string{"--config", f}, func(k string) string { return env[k] })
	if err != nil || !cfg.TLS.Enabled || !reflect.DeepEqual(cfg.TLS.ExcludeProcesses, []string{"a", "b"}) {
		t.Fatalf("env: %+v %v", cfg.TLS, err)
	}
	cfg, err = Load([]string{"--config", f, "--tls=true", "--tls-exclude-processes", "c"}, func(k string) string { return env[k] })
	if err != nil || !cfg.TLS.Enabled || !reflect.DeepEqual(cfg.TLS.ExcludeProcesses, []string{"c"}) {
		t.Fatalf("flags: %+v %v", cfg.TLS, err)
	}
	if _, err := Load([]string{"--tls-exclude-processes", "a-name-longer-than-a-comm"}, noEnv); err == nil {
		t.Fatal("a 25-byte process name accepted")
	}
}
