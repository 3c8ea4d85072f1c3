package store

import "golang.org/x/sys/unix"

// blockUnit is the unit of statfs's block counts.
func blockUnit(st *unix.Statfs_t) int64 { return int64(st.Bsize) }
