package agent

import (
	"errors"
	"fmt"
	"io/fs"
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
