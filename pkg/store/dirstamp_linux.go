package store

import "syscall"

// dirStamp is what changes when a directory's entries do: its modification
// time (a name added, removed or renamed), its change time and its inode
// (the directory replaced).
type dirStamp struct {
	ino          uint64
	mtime, ctime int64
}

func statDirStamp(dir string) (dirStamp, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirStamp{}, false
	}
	return dirStamp{uint64(st.Ino), st.Mtim.Nano(), st.Ctim.Nano()}, true
}
