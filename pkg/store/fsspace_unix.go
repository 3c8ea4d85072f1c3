//go:build linux || darwin

package store

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func statFS(dir string) (FSSpace, bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return FSSpace{}, false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	unit := blockUnit(&st)
	return FSSpace{Size: int64(st.Blocks) * unit, Avail: int64(st.Bavail) * unit, Block: max(unit, 4096)}, true, nil
}

// writable checks that dir may be written: not on a read-only filesystem,
// and permitted to this process.
func writable(dir string) error {
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	return nil
}
