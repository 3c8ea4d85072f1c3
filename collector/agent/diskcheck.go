package agent

import "github.com/zerotrace/zerotrace/pkg/store"

// CheckDataDir is what collect checks of the data directory before it
// starts: it exists, is a directory and is writable.
func (c *Config) CheckDataDir() error { return checkDataDir(c.DataDir) }

// StoreLimits are the disk budget and the free space collect keeps on the
// data directory's filesystem (0: none), resolved from the configuration
// and the filesystem's size as collect does, and that filesystem's space.
func (c *Config) StoreLimits() (budget, minFree int64, space store.FSSpace, err error) {
	return storeLimits(c.Store, c.DataDir)
}
