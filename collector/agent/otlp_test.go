package agent

import (
	"strings"
	"testing"
)

// TestOTLPConfig: off by default; --otlp turns it on at :4317 and :4318;
// addresses, netns and ZEROTRACE_OTLP* set it; bad addresses are refused.
func TestOTLPConfig(t *testing.T) {
	base := []string{"--node", "n1", "--data-dir", "/tmp/x"}
	none := func(string) string { return "" }
	cfg, err := Load(base, none)
	if err != nil || cfg.OTLP.Enabled {
		t.Fatalf("default: %+v %v", cfg.OTLP, err)
	}
	cfg, err = Load(append(base, "--otlp"), none)
	if err != nil || !cfg.OTLP.Enabled || cfg.OTLP.GRPC != ":4317" || cfg.OTLP.HTTP != ":4318" {
		t.Fatalf("--otlp: %+v %v", cfg.OTLP, err)
	}
	cfg, err = Load(append(base, "--otlp-grpc", "10.0.0.1:14317", "--otlp-http", "off", "--otlp-netns", "node2"), none)
	if err != nil || !cfg.OTLP.Enabled || cfg.OTLP.GRPC != "10.0.0.1:14317" || cfg.OTLP.HTTP != "" || cfg.OTLP.Netns != "node2" {
		t.Fatalf("flags: %+v %v", cfg.OTLP, err)
	}
	env := map[string]string{"ZEROTRACE_OTLP": "true", "ZEROTRACE_OTLP_HTTP": "127.0.0.1:4319"}
	cfg, err = Load(base, func(k string) string { return env[k] })
	if err != nil || !cfg.OTLP.Enabled || cfg.OTLP.HTTP != "127.0.0.1:4319" {
		t.Fatalf("env: %+v %v", cfg.OTLP, err)
	}
	for _, bad := range [][]string{{"--otlp-grpc", "nonsense"}, {"--otlp-grpc", "off", "--otlp-http", "off"}} {
		if _, err := Load(append(base, bad...), none); err == nil || !strings.Contains(err.Error(), "otlp") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
