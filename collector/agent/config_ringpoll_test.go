package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigRingPoll: ebpf.ring_poll from the default, YAML, env and flag,
// in that order of precedence; intervals outside 1ms..1s are errors.
func TestConfigRingPoll(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("ebpf:\n  ring_poll: 20ms\n"), 0o644)
	for _, c := range []struct {
		args []string
		env  map[string]string
		want time.Duration
		err  string
	}{
		{want: DefaultRingPoll},
		{env: map[string]string{"ZEROTRACE_CONFIG": file}, want: 20 * time.Millisecond},
		{env: map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_RING_POLL": "50ms"}, want: 50 * time.Millisecond},
		{args: []string{"--ring-poll", "100ms"}, env: map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_RING_POLL": "50ms"}, want: 100 * time.Millisecond},
		{args: []string{"--ring-poll", "2s"}, err: "ring_poll 2s"},
		{env: map[string]string{"ZEROTRACE_RING_POLL": "500us"}, err: "ring_poll 500µs"},
		{env: map[string]string{"ZEROTRACE_RING_POLL": "-1ms"}, err: "ring_poll -1ms"},
		{env: map[string]string{"ZEROTRACE_RING_POLL": "ten"}, err: "ZEROTRACE_RING_POLL"},
	} {
		cfg, err := Load(append([]string{"--data-dir", t.TempDir()}, c.args...), func(k string) string { return c.env[k] })
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v %v: err %v, want %q", c.args, c.env, err, c.err)
			}
		case err != nil:
			t.Errorf("%v %v: %v", c.args, c.env, err)
		case cfg.EBPF.RingPoll != c.want:
			t.Errorf("%v %v: ring_poll %v, want %v", c.args, c.env, cfg.EBPF.RingPoll, c.want)
		}
	}
}
