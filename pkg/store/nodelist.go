package store

import (
	"os"
	"time"
)

// The writer measures what its node directory holds before every batch
// (headroom.go): the sealed shards as listed, everything else as found.
// Listing the directory took time in proportion to the shards it holds
// (~1 ms at 1,500 shards, ~8.5 ms at 10,000 here), before every batch and
// seal. The listing is kept and used again while the directory provably
// has not changed (ADR 0004, tenth round): its modification and change
// times and inode are what they were when it was listed, and its
// modification time was then older than racyListing, so that a change in
// the same tick of the filesystem's clock cannot hide behind an unchanged
// time. What a listed entry holds (a head's files, a merge's output) is
// measured again every time, as before; only which entries exist is
// reused. A listing is also never used for more than maxListingAge.
const (
	racyListing   = 100 * time.Millisecond
	maxListingAge = time.Second
)

// nodeListing is a listing of the node directory kept for the next
// measure.
type nodeListing struct {
	ents  []os.DirEntry
	stamp dirStamp
	at    time.Time
	ok    bool
}

// entries lists dir, or returns the listing kept when dir has not changed
// since.
func (l *nodeListing) entries(dir string, now time.Time) []os.DirEntry {
	if l.ok && now.Sub(l.at) < maxListingAge && now.After(l.at) {
		if st, ok := statDirStamp(dir); ok && st == l.stamp {
			return l.ents
		}
	}
	l.ok = false
	before, ok := statDirStamp(dir)
	ents, err := os.ReadDir(dir) // on an error, what was read (as before), never kept
	after, ok2 := statDirStamp(dir)
	if err == nil && ok && ok2 && before == after && before.mtime < now.Add(-racyListing).UnixNano() {
		l.ents, l.stamp, l.at, l.ok = ents, after, now, true
	}
	return ents
}
