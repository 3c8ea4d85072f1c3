//go:build linux

package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// TestDataDir: a missing directory, a file, a damaged node manifest and a
// data group that does not exist stop the collector and are named; a
// store without a budget, free space kept or retention is degraded, and so
// is a filesystem already below the free space kept; otherwise the free
// space, the node's shards, the budget and the free space kept (resolved
// as collect does) are said, and nothing is left behind.
func TestDataDir(t *testing.T) {
	testenv.RequireRoot(t) // gives files to another group
	base := t.TempDir()
	cfg := agent.Defaults()
	cfg.Node = "node1"
	check := func(mod func(*agent.Config)) Check {
		c := cfg
		mod(&c)
		got := dataDirCheck(&c)
		t.Logf("%s: %s — %s", got.Status, got.Detail, got.Cost)
		return got
	}
	want := func(c Check, st Status, detail ...string) {
		t.Helper()
		if c.Status != st {
			t.Errorf("%s, want %s: %s", c.Status, st, c.Detail)
		}
		for _, d := range detail {
			if !strings.Contains(c.Detail, d) {
				t.Errorf("want %q in %q", d, c.Detail)
			}
		}
	}
	file := filepath.Join(base, "a-file")
	os.WriteFile(file, nil, 0o644)
	want(check(func(c *agent.Config) { c.DataDir = filepath.Join(base, "missing") }), Missing, "missing does not exist")
	want(check(func(c *agent.Config) { c.DataDir = file }), Missing, "a-file is not a directory")

	dir := filepath.Join(base, "data")
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: "node1", NoBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(span.Span{SpanID: 1, Node: "node1", StartNs: time.Now().UnixNano(), EndNs: time.Now().UnixNano() + 1})
	w.Close()
	space, _, err := store.StatFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults, as collect resolves them: a fifth of the filesystem, a
	// tenth of it (at least 1 GiB) kept free.
	want(check(func(c *agent.Config) { c.DataDir = dir }), OK, dir+": writable; ", " free of ",
		"disk budget "+bytesText(store.DefaultDiskBudget(space.Size)), "keeps "+bytesText(store.DefaultMinFree(space.Size))+" free")
	want(check(func(c *agent.Config) { c.DataDir, c.Store.DiskBudget, c.Store.MinFree = dir, -1, -1 }), Degraded,
		"no disk budget; no free space kept and no retention age")
	want(check(func(c *agent.Config) { c.DataDir, c.Store.MinFree = dir, space.Size }), Degraded, "keeps "+bytesText(space.Size)+" free")
	want(check(func(c *agent.Config) { c.DataDir, c.Store.DiskBudget = dir, 10<<30 }), OK, "node node1 holds 1 shards", "disk budget 10.0 GiB")
	want(check(func(c *agent.Config) {
		c.DataDir, c.Store.DiskBudget, c.Store.MinFree, c.Store.RetentionAge = dir, -1, -1, time.Hour
	}), OK,
		"no disk budget; shards older than 1h0m0s are deleted")
	want(check(func(c *agent.Config) { c.DataDir, c.Store.RetentionAge, c.DataGroup = dir, time.Hour, "65534" }), OK, "shards go to group 65534 (gid 65534)")
	want(check(func(c *agent.Config) { c.DataDir, c.DataGroup = dir, "zt-no-such-group" }), Missing, "data group zt-no-such-group")

	manifest := filepath.Join(dir, "node1", store.ManifestName)
	os.Chmod(manifest, 0o644)
	os.WriteFile(manifest, []byte(`{"version":1,"node":"node1","shards":[`), 0o644)
	want(check(func(c *agent.Config) { c.DataDir = dir }), Missing, manifest, "parsing manifest")

	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "node1" {
			t.Errorf("left in the data directory: %s", e.Name())
		}
	}
}
