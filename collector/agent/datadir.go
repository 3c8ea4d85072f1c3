package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/zerotrace/zerotrace/pkg/store"
)

// checkDataDir makes sure the data directory can take shards before
// anything starts: it exists (a missing one is most often a volume that
// is not mounted, and writing there would fill another filesystem), is a
// directory, and is writable.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("data directory %s does not exist: create it (or mount its volume there) first", dir)
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if err := store.Writable(dir); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// storeLimits resolves the disk budget and the minimum free space: the
// configured values (-1: none), or the defaults from the size of the data
// directory's filesystem (store.DefaultDiskBudget, store.DefaultMinFree).
func storeLimits(c StoreConfig, dir string) (budget, minFree int64, space store.FSSpace, err error) {
	space, ok, err := store.StatFS(dir)
	if err != nil {
		return 0, 0, space, fmt.Errorf("data directory: %w", err)
	}
	resolve := func(v int64, def func(int64) int64) int64 {
		switch {
		case v < 0:
			return 0
		case v == 0 && ok:
			return def(space.Size)
		}
		return v
	}
	return resolve(c.DiskBudget, store.DefaultDiskBudget), resolve(c.MinFree, store.DefaultMinFree), space, nil
}

// openStore checks the data directory (checkDataDir) and opens the node's
// store writer with the disk limits resolved (storeLimits); keep holds
// back retention by age (the uploader's).
func openStore(cfg Config, keep func(string) bool, log *slog.Logger) (*store.Writer, error) {
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	budget, minFree, space, err := storeLimits(cfg.Store, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	log.Info("store disk space", "filesystem", space.Size, "free", space.Avail, "budget", budget, "min_free", minFree)
	w, err := store.OpenWriter(store.WriterOptions{Dir: cfg.DataDir, Node: cfg.Node, Group: cfg.DataGroup, BatchRows: cfg.Store.BatchRows,
		BatchInterval: cfg.Store.BatchInterval, SealInterval: cfg.Store.SealInterval, RetentionAge: cfg.Store.RetentionAge,
		DiskBudget: budget, MinFree: minFree, Keep: keep, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	return w, nil
}
