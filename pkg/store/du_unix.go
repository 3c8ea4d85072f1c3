//go:build unix

package store

import (
	"os"
	"syscall"
)

// diskUsage is the space a file takes on disk: Badger preallocates sparse
// files, whose apparent size says little.
func diskUsage(info os.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
