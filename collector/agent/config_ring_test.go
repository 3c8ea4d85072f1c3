package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/ebpf"
)

// TestConfigRing: ebpf.ring_mib and ebpf.ring_poll from the default, YAML,
// env and flag, in that order of precedence; sizes the kernel refuses and
// polls outside 1ms..1s are errors.
func TestConfigRing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("ebpf:\n  ring_mib: 16\n  ring_poll: 20ms\n"), 0o644)
	yaml := map[string]string{"ZEROTRACE_CONFIG": file}
	for _, c := range []struct {
		args []string
		env  map[string]string
		mib  int
		poll time.Duration
		err  string
	}{
		{mib: ebpf.DefaultRingMiB, poll: ebpf.DefaultRingPoll},
		{env: yaml, mib: 16, poll: 20 * time.Millisecond},
		{env: map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_RING_MIB": "64", "ZEROTRACE_RING_POLL": "50ms"}, mib: 64, poll: 50 * time.Millisecond},
		{args: []string{"--ring-mib", "128", "--ring-poll", "100ms"}, env: map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_RING_MIB": "64", "ZEROTRACE_RING_POLL": "50ms"}, mib: 128, poll: 100 * time.Millisecond},
		{args: []string{"--ring-mib", "24"}, err: "ring_mib 24"},
		{env: map[string]string{"ZEROTRACE_RING_MIB": "2048"}, err: "ring_mib 2048"},
		{env: map[string]string{"ZEROTRACE_RING_MIB": "-8"}, err: "ring_mib -8"},
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
		case cfg.EBPF.RingMiB != c.mib || cfg.EBPF.RingPoll != c.poll:
			t.Errorf("%v %v: ring_mib %d, ring_poll %v, want %d, %v", c.args, c.env, cfg.EBPF.RingMiB, cfg.EBPF.RingPoll, c.mib, c.poll)
		}
	}
}
