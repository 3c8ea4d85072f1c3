package bucket

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/zerotrace/zerotrace/pkg/store"
)

// errCacheFull: the cache directory's filesystem has no room for a shard
// above the free space the mirror leaves (MirrorOptions.MinFree).
var errCacheFull = errors.New("no room in the cache directory")

// minFree resolves MirrorOptions.MinFree for the cache directory dir.
func minFree(dir string, v int64) int64 {
	switch {
	case v < 0:
		return 0
	case v > 0:
		return v
	}
	if fs, ok, err := store.StatFS(dir); err == nil && ok {
		return store.DefaultMinFree(fs.Size)
	}
	return 0
}

// makeRoomLocked reserves room for downloading s: the free space above
// MinFree, less the downloads in flight, must hold its files; if it does
// not, the least recently used unpinned shards go first. Else the shard is
// errCacheFull and the query that wanted it gets a notice.
func (m *Mirror) makeRoomLocked(s Shard) error {
	fs, ok, err := store.StatFS(m.opt.Dir)
	if err != nil {
		return fmt.Errorf("%w: %v", errCacheFull, err)
	}
	if !ok { // the platform cannot tell: a failed write says it
		m.reserved += s.Bytes()
		return nil
	}
	need := s.Bytes() + int64(len(s.Files)+1)*fs.Block
	room := func() int64 {
		if fs, _, err = store.StatFS(m.opt.Dir); err != nil {
			return math.MinInt64
		}
		return fs.Avail - m.opt.MinFree - m.reserved
	}
	r := room()
	if r < need && m.evictForLocked(need-r) {
		r = room()
	}
	if r < need {
		return fmt.Errorf("%w %s: %d MB free, %d MB kept free, %d MB downloading, the shard needs %d MB (free space there, or move the cache)",
			errCacheFull, m.opt.Dir, fs.Avail>>20, m.opt.MinFree>>20, m.reserved>>20, (need+1<<20-1)>>20)
	}
	m.reserved += s.Bytes()
	return nil
}

// evictForLocked drops unpinned shards, least recently used first, until
// they free bytes, and deletes them now (not after the usual delay: the
// space is wanted). It reports whether it dropped any.
func (m *Mirror) evictForLocked(bytes int64) bool {
	var gone []*cshard
	for e := m.lru.Back(); e != nil && bytes > 0; {
		prev := e.Prev()
		if cs := e.Value.(*cshard); cs.pins == 0 {
			gone = append(gone, cs)
			bytes -= cs.bytes
			m.lru.Remove(cs.elem)
			cs.elem = nil
			m.used -= cs.bytes
			if n := m.nodes[cs.node]; n != nil && n.cached[cs.entry.Name] == cs {
				delete(n.cached, cs.entry.Name)
			}
		}
		e = prev
	}
	if len(gone) == 0 {
		return false
	}
	// The manifests stop listing them first; if even that does not fit,
	// they are rewritten at the next query.
	if err := m.writeManifests(); err != nil {
		for _, n := range m.nodes {
			n.written = ""
		}
	}
	for _, cs := range gone {
		os.RemoveAll(filepath.Join(m.opt.Dir, cs.node, cs.dir))
	}
	m.log.Info("bucket cache: dropped shards to make room on a full disk", "shards", len(gone))
	return true
}
