//go:build linux

package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/zerotrace/zerotrace/collector/agent"
)

// TestCollectGC: the configuration's memory limit and GC percent reach the
// runtime (read back from it), and GOMEMLIMIT and GOGC, when set, leave the
// runtime's own settings alone.
func TestCollectGC(t *testing.T) {
	oldPct, oldLim := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(oldPct); debug.SetMemoryLimit(oldLim) })
	read := func() (int, int64) {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p, debug.SetMemoryLimit(-1) // a negative limit reads it
	}
	cfg := agent.Defaults()
	for _, c := range []struct {
		name     string
		pct, mb  int
		env      map[string]string
		wantPct  int
		wantLimB int64
	}{
		{"defaults", cfg.GCPercent, cfg.MemoryLimitMB, nil, agent.DefaultGCPercent, 200 << 20},
		{"off, at the limit only", -1, 250, nil, -1, 250 << 20},
		{"GOGC wins", 300, 120, map[string]string{"GOGC": "50"}, 100, 120 << 20},
		{"GOMEMLIMIT wins", 300, 120, map[string]string{"GOMEMLIMIT": "1GiB"}, 300, math.MaxInt64},
	} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		cfg.GCPercent, cfg.MemoryLimitMB = c.pct, c.mb
		setCollectGC(cfg, func(k string) string { return c.env[k] })
		if p, l := read(); p != c.wantPct || l != c.wantLimB {
			t.Errorf("%s: GC percent %d, memory limit %d; want %d, %d", c.name, p, l, c.wantPct, c.wantLimB)
		}
	}
}
