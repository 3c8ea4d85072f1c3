//go:build !linux

package store

// dirStamp: only Linux's directory times are relied on to keep a listing
// (nodelist.go); elsewhere the node directory is listed every time.
type dirStamp struct{ mtime int64 }

func statDirStamp(string) (dirStamp, bool) { return dirStamp{}, false }
