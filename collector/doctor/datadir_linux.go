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

	"golang.org/x/sys/unix"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// dataDirCheck: the collector's data directory exists, is a directory this
// process may write, and has room; the node's manifest, if there is one,
// reads.
func dataDirCheck(cfg *agent.Config) Check {
	const name = "data directory"
	dir := cfg.DataDir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return missing(name, dir+" does not exist", "the collector does not start: create it (or mount its volume there) first")
	case err != nil:
		return missing(name, err.Error(), "the collector does not start")
	case !fi.IsDir():
		return missing(name, dir+" is not a directory", "the collector does not start")
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
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		size, avail := int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize
		parts = append(parts, fmt.Sprintf("%s free of %s", bytesText(avail), bytesText(size)))
	}
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
	if cfg.Store.DiskBudget > 0 {
		parts = append(parts, "disk budget "+bytesText(cfg.Store.DiskBudget))
	} else if cfg.Store.RetentionAge <= 0 {
		return degraded(name, strings.Join(parts, "; ")+"; no disk budget and no retention age",
			"the shards grow until the disk is full (set store.disk_budget or store.retention_age)")
	} else {
		parts = append(parts, "no disk budget; shards older than "+cfg.Store.RetentionAge.String()+" are deleted")
	}
	return ok(name, strings.Join(parts, "; "))
}

// unwrapPath is err without the path its *fs.PathError repeats.
func unwrapPath(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
