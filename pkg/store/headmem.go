package store

import (
	"os"
	"path/filepath"
	"strings"
)

// memLogBytes is the size of the largest memtable write-ahead log (.mem
// file) in a shard directory; Badger creates each at twice its memtable
// size. 0 when there is none (a new or sealed shard).
func memLogBytes(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
			n = max(n, fi.Size())
		}
	}
	return n
}
