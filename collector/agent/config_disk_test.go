package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/store"
)

// TestConfigDiskLimits: store.disk_budget and store.min_free from YAML,
// environment and flags (in that order), 0 for the defaults from the
// filesystem's size, -1 for none; anything below -1 is refused.
func TestConfigDiskLimits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("store:\n  disk_budget: 1000000\n  min_free: 2000000\n"), 0o644)
	env := map[string]string{"ZEROTRACE_CONFIG": file}
	get := func(k string) string { return env[k] }
	cfg, err := Load(nil, get)
	if err != nil || cfg.Store.DiskBudget != 1000000 || cfg.Store.MinFree != 2000000 {
		t.Fatalf("from YAML: %v %+v", err, cfg.Store)
	}
	env["ZEROTRACE_DISK_BUDGET"], env["ZEROTRACE_MIN_FREE"] = "3000000", "-1"
	if cfg, err = Load(nil, get); err != nil || cfg.Store.DiskBudget != 3000000 || cfg.Store.MinFree != -1 {
		t.Fatalf("from the environment: %v %+v", err, cfg.Store)
	}
	if cfg, err = Load([]string{"--disk-budget", "0", "--min-free", "5"}, get); err != nil || cfg.Store.DiskBudget != 0 || cfg.Store.MinFree != 5 {
		t.Fatalf("from flags: %v %+v", err, cfg.Store)
	}
	for _, args := range [][]string{{"--disk-budget", "-2"}, {"--min-free", "-7"}} {
		if _, err := Load(args, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "disk_budget") {
			t.Errorf("%v: %v, want refused", args, err)
		}
	}

	dir := t.TempDir()
	space, ok, err := store.StatFS(dir)
	if err != nil || !ok || space.Size <= 0 {
		t.Fatalf("statfs: %v %v %+v", ok, err, space)
	}
	for _, tc := range []struct {
		in              StoreConfig
		budget, minFree int64
	}{
		{StoreConfig{}, space.Size / 5, max(space.Size/10, min(1<<30, space.Size/4))},
		{StoreConfig{DiskBudget: -1, MinFree: -1}, 0, 0},
		{StoreConfig{DiskBudget: 123, MinFree: 456}, 123, 456},
	} {
		b, m, _, err := storeLimits(tc.in, dir)
		if err != nil || b != tc.budget || m != tc.minFree {
			t.Errorf("%+v: budget %d, min free %d, %v; want %d, %d", tc.in, b, m, err, tc.budget, tc.minFree)
		}
	}
	for _, tc := range []struct{ size, minFree, budget int64 }{
		{64 << 20, 16 << 20, 64 << 20 / 5},   // a small tmpfs: a quarter
		{8 << 30, 1 << 30, 8 << 30 / 5},      // 1 GiB over 10%
		{100 << 30, 10 << 30, 100 << 30 / 5}, // 10%
	} {
		if m, b := store.DefaultMinFree(tc.size), store.DefaultDiskBudget(tc.size); m != tc.minFree || b != tc.budget {
			t.Errorf("filesystem of %d: min free %d, budget %d; want %d, %d", tc.size, m, b, tc.minFree, tc.budget)
		}
	}
}

// TestDataDirectoryChecked: a missing data directory (a volume not
// mounted, say) or a file in its place is a clear error before anything
// starts.
func TestDataDirectoryChecked(t *testing.T) {
	dir := t.TempDir()
	if err := checkDataDir(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if err := checkDataDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v", err)
	}
	if err := checkDataDir(dir); err != nil {
		t.Errorf("a directory: %v", err)
	}
}
