package store

import "golang.org/x/sys/unix"

// blockUnit is the unit of statfs's block counts: the fragment size
// (statfs(2)), else the block size.
func blockUnit(st *unix.Statfs_t) int64 {
	if st.Frsize > 0 {
		return st.Frsize
	}
	return st.Bsize
}
