package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigRingMiB: ebpf.ring_mib from the default, YAML, env and flag, in
// that order of precedence; sizes the kernel refuses are errors.
func TestConfigRingMiB(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("ebpf:\n  ring_mib: 16\n"), 0o644)
	for _, c := range []struct {
		args []string
		env  map[string]string
		want int
		err  string
	}{
		{want: DefaultRingMiB},
		{env: map[string]string{"ZEROTRACE_CONFIG": file}, want: 16},
		{env: map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_RING_MIB": "64"}, want: 64},
		{args: []string{"--ring-mib", "128"}, env: map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_RING_MIB": "64"}, want: 128},
		{args: []string{"--ring-mib", "24"}, err: "ring_mib 24"},
		{env: map[string]string{"ZEROTRACE_RING_MIB": "2048"}, err: "ring_mib 2048"},
		{env: map[string]string{"ZEROTRACE_RING_MIB": "-8"}, err: "ring_mib -8"},
	} {
		cfg, err := Load(append([]string{"--data-dir", t.TempDir()}, c.args...), func(k string) string { return c.env[k] })
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v %v: err %v, want %q", c.args, c.env, err, c.err)
			}
		case err != nil:
			t.Errorf("%v %v: %v", c.args, c.env, err)
		case cfg.EBPF.RingMiB != c.want:
			t.Errorf("%v %v: ring_mib %d, want %d", c.args, c.env, cfg.EBPF.RingMiB, c.want)
		}
	}
}
