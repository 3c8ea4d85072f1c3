package store

import (
	"math"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Badger writes its files through memory mappings: a page of a mapped file
// the filesystem cannot back is a SIGBUS that kills the process, not an
// error. So the writer never starts a step — a batch into the head shard,
// a seal, a merge, the recovery of a head shard a crash left — unless the
// room it has is at least the most the step can write (its need):
//
//	room = min(free space − MinFree, DiskBudget − what the node directory holds)
//	       − what a merge in progress may still write
//
// A batch that does not fit is dropped whole and counted; a seal or a merge
// that does not fit waits and is tried again. Merges need the most and also
// leave room for the head shard's next batch and seal, so on a filling disk
// merges wait first, then new spans are dropped. docs/adr/0001-store.md
// ("Disk space") derives the needs.

// sstBytes bounds the table file Badger flushes from a memtable whose
// write-ahead log holds wal bytes: the same entries, without the log's
// headers and checksums but with the table's block offsets, block index
// and bloom filter (measured: a head table is 0.85 to 0.95 of its log).
func sstBytes(wal, block int64) int64 { return wal + wal/8 + 4*block }

// overhead is what opening, closing and listing a shard adds besides its
// data: the first pages of the write-ahead log, the value log and DISCARD,
// Badger's MANIFEST, KEYREGISTRY and LOCK, and the node manifest rewritten
// next to the old one.
func (w *Writer) overhead() int64 {
	return 16*w.space.block + int64(w.space.manifestBytes) + 64<<10
}

// sealNeed is the most sealing a head shard can write: its index (idx
// bytes) into the log, then the tables of everything its log holds.
func (w *Writer) sealNeed(wal, idx int64) int64 {
	return idx + w.tablesNeed(wal+idx, headMemTable) + w.overhead()
}

// mergeNeed is the most merging shards of bytes can write: the copy into
// the output's logs, then its tables.
func (w *Writer) mergeNeed(bytes int64) int64 {
	return bytes + w.tablesNeed(bytes, mergedMemTable) + w.overhead()
}

// tablesNeed bounds the tables Badger writes from logs of wal bytes: one
// copy, and one more when level 0 holds enough memtables (five) for a
// compactor to rewrite it before the old tables go.
func (w *Writer) tablesNeed(wal, memtable int64) int64 {
	need := sstBytes(wal, w.space.block)
	if wal >= 4*memtable {
		need *= 2
	}
	return need
}

// Drop reasons (StoreStats, zerotrace_store_dropped_spans_total).
const (
	DropDisk  = "disk"  // not enough disk space or budget
	DropError = "error" // the shard write failed
)

// spaceState is the writer's disk accounting. Counters are atomic; the
// rest is guarded by Writer.mu.
type spaceState struct {
	stored, droppedDisk, droppedErr, deletedAge, deletedBudget atomic.Uint64

	block         int64 // the filesystem's allocation unit
	manifestBytes int   // size of the node manifest last written
	short         bool  // new spans are dropped: the last batch found no room
	shortSince    time.Time
	lastWarn      time.Time
	warnedDrops   uint64
	lastMergeLog  time.Time
	sealWaits     bool // the head shard waits for room to be sealed
	refused       bool // a batch was dropped for lack of room since the last probe
	lastNeed      int64
	idxRatio      float64 // encoded/raw index bytes of the last sealed head
	mergeNeed     int64   // what the merge in progress may write in all
	mergeTmp      string  // its output directory
	merging       map[string]bool
	mergesWaiting int
	unrecovered   []string // head shards a crash left, waiting for room
	snap          StoreStats
	listing       nodeListing // the node directory's entries, kept while it does not change
}

// StoreStats are a writer's disk accounting since it opened (recorded in
// CaptureStats.Store for `zerotrace store stats` and the plugin's health).
type StoreStats struct {
	Spans         uint64 `json:"spans"`          // spans written into shards
	DroppedDisk   uint64 `json:"dropped_disk"`   // new spans dropped: no room on the disk or in the budget
	DroppedError  uint64 `json:"dropped_error"`  // new spans dropped: the shard write failed
	DeletedAge    uint64 `json:"deleted_age"`    // spans of shards retention deleted for their age
	DeletedBudget uint64 `json:"deleted_budget"` // spans of shards deleted to keep within the disk budget
	UsedBytes     int64  `json:"used_bytes"`     // what the node directory holds, everything counted
	FreeBytes     int64  `json:"free_bytes"`     // free on its filesystem (-1: unknown)
	FSBytes       int64  `json:"fs_bytes"`       // size of its filesystem (0: unknown)
	BudgetBytes   int64  `json:"budget_bytes"`   // the disk budget (0: none)
	MinFreeBytes  int64  `json:"min_free_bytes"` // the free space kept
	// ShortSinceNs: new spans have been dropped since then for lack of
	// room (0: writing).
	ShortSinceNs  int64 `json:"short_since_ns,omitempty"`
	MergesWaiting int   `json:"merges_waiting,omitempty"` // windows whose merge waits for room
	// Unrecovered: head shards a crash left that wait for room to be
	// sealed (their spans are listed once they are).
	Unrecovered int `json:"unrecovered,omitempty"`
}

// Stats returns the writer's disk accounting as last measured (every
// batch and every maintenance round).
func (w *Writer) Stats() StoreStats {
	w.mu.Lock()
	s := w.space.snap
	w.mu.Unlock()
	s.Spans = w.space.stored.Load()
	s.DroppedDisk = w.space.droppedDisk.Load()
	s.DroppedError = w.space.droppedErr.Load()
	s.DeletedAge = w.space.deletedAge.Load()
	s.DeletedBudget = w.space.deletedBudget.Load()
	return s
}

// usedLocked is what the node directory holds: the sealed shards as
// listed, everything else (head shard, merge output, shards a crash left,
// manifests) as measured; tmp is the merge output's share.
func (w *Writer) usedLocked() (used, tmp int64) {
	listed := make(map[string]int64, len(w.manifest.Shards))
	for _, s := range w.manifest.Shards {
		listed[s.Name] = s.Bytes
	}
	for _, e := range w.space.listing.entries(w.nodeDir, time.Now()) {
		if b, ok := listed[e.Name()]; ok && e.IsDir() {
			used += b
			continue
		}
		if e.IsDir() {
			d := dirSize(filepath.Join(w.nodeDir, e.Name()))
			used += d
			if e.Name() == w.space.mergeTmp {
				tmp = d
			}
			continue
		}
		if info, err := e.Info(); err == nil {
			used += diskUsage(info)
		}
	}
	return used, tmp
}

// roomLocked measures the room the next step may use (see the top of this
// file) and records the figures for Stats.
func (w *Writer) roomLocked() int64 {
	used, tmp := w.usedLocked()
	reserve := max(0, w.space.mergeNeed-tmp)
	room := int64(math.MaxInt64)
	fs, ok, err := statFS(w.nodeDir)
	switch {
	case err != nil:
		room = 0 // cannot tell: nothing that could fault
		w.warnLocked("store: cannot measure the free space: dropping new spans", "err", err)
	case ok:
		room = fs.Avail - w.opt.MinFree - reserve
		w.space.block = fs.Block
	}
	if w.opt.DiskBudget > 0 {
		room = min(room, w.opt.DiskBudget-used-reserve)
	}
	free := int64(-1)
	if ok {
		free = fs.Avail
	}
	sn := &w.space.snap
	sn.UsedBytes, sn.FreeBytes, sn.FSBytes, sn.BudgetBytes, sn.MinFreeBytes = used, free, fs.Size, max(w.opt.DiskBudget, 0), w.opt.MinFree
	sn.MergesWaiting, sn.Unrecovered = w.space.mergesWaiting, len(w.space.unrecovered)
	return room
}

// budgetShort says whether a step of need bytes would take the node
// directory over the disk budget: then the budget allows deleting the
// oldest shards (retainForLocked), which makes room on the disk too.
func (w *Writer) budgetShort(need int64) bool {
	return w.opt.DiskBudget > 0 && w.space.snap.UsedBytes+need > w.opt.DiskBudget
}

// batchNeed is the most writing sws into the head shard can write, its
// later seal included (the index at the ratio the last seal showed).
func (w *Writer) batchNeed(sws []*shardWrite) int64 {
	h := w.head
	wal, recs := h.wal, h.recBytes()
	var b int64
	for _, sw := range sws {
		b += sw.walBytes()
		recs += sw.recBytes()
	}
	return b + w.sealNeed(wal+b, int64(float64(recs)*w.space.idxRatio))
}

// admitLocked decides whether a step of need bytes may start, given the
// room measured (roomLocked), deleting the oldest shards first when the
// disk budget allows it.
func (w *Writer) admitLocked(need, room int64) (int64, bool) {
	if need <= room {
		return room, true
	}
	if w.budgetShort(need) && w.retainForLocked(need-room, nil) {
		room = w.roomLocked()
	}
	return room, need <= room
}

// dropLocked counts n new spans dropped (reason DropDisk: no room for
// need bytes, room there was).
func (w *Writer) dropLocked(n int, reason string, need, room int64) {
	if reason == DropError {
		w.space.droppedErr.Add(uint64(n))
		return
	}
	w.space.droppedDisk.Add(uint64(n))
	w.space.refused = true
	w.shortLocked(need, room)
}

// shortLocked starts or continues a shortage: new spans are dropped. It
// says so once a minute.
func (w *Writer) shortLocked(need, room int64) {
	if !w.space.short {
		w.space.short, w.space.shortSince = true, time.Now()
		w.space.snap.ShortSinceNs = w.space.shortSince.UnixNano()
	}
	if time.Since(w.space.lastWarn) < time.Minute {
		return
	}
	total := w.space.droppedDisk.Load()
	sn := w.space.snap
	w.space.lastWarn = time.Now()
	msg := "store: not enough disk space: dropping new spans"
	if w.space.sealWaits {
		msg = "store: not enough disk space to seal the head shard: dropping new spans"
	}
	w.log.Warn(msg, "need", need, "room", room, "free", sn.FreeBytes, "min_free", sn.MinFreeBytes, "used", sn.UsedBytes,
		"budget", sn.BudgetBytes, "dropped_since_last_warning", total-w.space.warnedDrops, "dropped_total", total)
	w.space.warnedDrops = total
}

// roomBackLocked ends a shortage: spans are written again.
func (w *Writer) roomBackLocked() {
	if !w.space.short {
		return
	}
	w.log.Info("store: disk space available again: writing new spans", "short_for", time.Since(w.space.shortSince).Round(time.Millisecond),
		"dropped_total", w.space.droppedDisk.Load())
	w.space.short, w.space.snap.ShortSinceNs = false, 0
}

// warnLocked logs a warning at most once a minute (it shares the rate
// with the drop warning).
func (w *Writer) warnLocked(msg string, args ...any) {
	if time.Since(w.space.lastWarn) >= time.Minute {
		w.space.lastWarn = time.Now()
		w.log.Warn(msg, args...)
	}
}

// probeLocked, at open and in maintenance, checks that the disk has room
// for a head shard at all; it starts or ends a shortage no batch reported.
func (w *Writer) probeLocked() {
	room := w.roomLocked()
	need := w.overhead() + max(w.space.lastNeed, 256<<10)
	if room < need && w.budgetShort(need) && len(w.manifest.Shards) > 0 {
		return // the next batch deletes the oldest shards to make room
	}
	switch {
	case room < need && !w.space.short:
		w.space.short, w.space.shortSince = true, time.Now()
		w.space.snap.ShortSinceNs = w.space.shortSince.UnixNano()
		sn := w.space.snap
		w.space.lastWarn = time.Now()
		w.log.Warn("store: not enough disk space for new shards: new spans are dropped until there is", "room", room, "need", need,
			"free", sn.FreeBytes, "min_free", sn.MinFreeBytes, "used", sn.UsedBytes, "budget", sn.BudgetBytes)
	case room >= need && w.space.short && !w.space.sealWaits && !w.space.refused:
		w.roomBackLocked() // no batch came to say so
	}
	w.space.refused = false
}

// logMergeWait says, once a minute, that merges wait for room.
func (w *Writer) logMergeWait(need, room int64) {
	if time.Since(w.space.lastMergeLog) >= time.Minute {
		w.space.lastMergeLog = time.Now()
		w.log.Info("store: merges wait for disk space", "need", need, "room", room, "windows", w.space.mergesWaiting)
	}
}
