//go:build linux

package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// dataDirCheck: the collector's data directory exists, is a directory this
// process may write, and has room; the node's manifest, if there is one,
// reads.
func dataDirCheck(cfg *agent.Config) Check {
	const name = "data directory"
	dir := cfg.DataDir
	if err := cfg.CheckDataDir(); err != nil {
		return missing(name, err.Error(), "the collector does not start: it writes its shards there")
	}
	f, err := os.CreateTemp(dir, ".zerotrace-doctor-*")
	if err != nil {
		return missing(name, dir+" is not writable: "+unwrapPath(err), "the collector does not start: it writes its shards there")
	}
	defer os.Remove(f.Name())
	f.Close()
	parts := []string{dir + ": writable"}
	if g := cfg.DataGroup; g != "" {
		gid, err := store.LookupGroup(g)
		if err == nil {
			err = os.Chown(f.Name(), -1, gid)
		}
		if err != nil {
			return missing(name, fmt.Sprintf("%s; data group %s: %v", parts[0], g, err),
				"the collector does not start: it gives its shards to that group (which needs CAP_CHOWN unless it is one of this user's groups)")
		}
		parts = append(parts, fmt.Sprintf("shards go to group %s (gid %d)", g, gid))
	}
	budget, minFree, space, err := cfg.StoreLimits()
	if err != nil {
		return missing(name, strings.Join(parts, "; ")+"; "+err.Error(), "the collector does not start")
	}
	parts = append(parts, fmt.Sprintf("%s free of %s", bytesText(space.Avail), bytesText(space.Size)))
	nodeDir := filepath.Join(dir, cfg.Node)
	if r, err := store.OpenReader(nodeDir); err == nil {
		s, err := r.Stats(context.Background())
		r.Close()
		if err != nil {
			return missing(name, strings.Join(parts, "; ")+"; node "+cfg.Node+": "+err.Error(), "the collector does not start until the manifest reads")
		}
		if s.Shards > 0 {
			parts = append(parts, fmt.Sprintf("node %s holds %d shards, %s", cfg.Node, s.Shards, bytesText(s.Bytes)))
		}
	}
	if budget > 0 {
		parts = append(parts, "disk budget "+bytesText(budget))
	} else {
		parts = append(parts, "no disk budget")
	}
	if minFree > 0 {
		parts = append(parts, "keeps "+bytesText(minFree)+" free")
	}
	if cfg.Store.RetentionAge > 0 {
		parts = append(parts, "shards older than "+cfg.Store.RetentionAge.String()+" are deleted")
	}
	detail := strings.Join(parts, "; ")
	switch {
	case minFree > 0 && space.Avail < minFree:
		return degraded(name, detail, "the collector drops new spans (and counts them) until the filesystem has "+bytesText(minFree)+" free: free space, or lower store.min_free")
	case budget <= 0 && minFree <= 0 && cfg.Store.RetentionAge <= 0:
		return degraded(name, detail+"; no free space kept and no retention age",
			"the shards grow until the disk is full (set store.disk_budget, store.min_free or store.retention_age)")
	}
	return ok(name, detail)
}

// unwrapPath is err without the path its *fs.PathError repeats.
func unwrapPath(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
