package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Maintain writes a manifest that waited for disk space, seals head shards
// a crash left once there is room, merges the small shards of finished
// windows and applies retention. The background loop calls it every 5 s.
func (w *Writer) Maintain() error {
	w.mu.Lock()
	err := w.catchUpLocked()
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if err := w.merge(); err != nil {
		return err
	}
	return w.retain()
}

// catchUpLocked retries what waited for disk space: the node manifest and
// the recovery of head shards a crash left; then it checks the room.
func (w *Writer) catchUpLocked() error {
	if w.manifestDirty {
		if err := w.commitManifestLocked(); err != nil {
			return err
		}
	}
	pending := w.space.unrecovered
	w.space.unrecovered = nil
	changed := false
	for i, name := range pending {
		ok, err := w.recoverHeadLocked(name)
		if err != nil {
			w.space.unrecovered = append(w.space.unrecovered, pending[i+1:]...)
			return err
		}
		changed = changed || ok
	}
	if changed {
		if err := w.commitManifestLocked(); err != nil {
			return err
		}
	}
	w.probeLocked()
	return nil
}

// commitManifestLocked writes the node manifest, then deletes the shards
// it no longer lists (merge sources, retention). On a full disk the
// manifest waits (Maintain retries it): readers keep the previous one, and
// the shards it still lists stay until it is written.
func (w *Writer) commitManifestLocked() error {
	n, err := w.manifestEnc.write(w.nodeDir, w.manifest)
	if err != nil {
		w.manifestDirty = true
		if IsNoSpace(err) {
			w.warnLocked("store: the node manifest waits for disk space", "err", err)
			return nil
		}
		return err
	}
	w.manifestDirty = false
	w.space.manifestBytes = n
	for _, n := range w.obsolete {
		os.RemoveAll(filepath.Join(w.nodeDir, n))
		w.opener.forget(filepath.Join(w.nodeDir, n)) // a head deleted unmerged (retention)
	}
	w.obsolete = nil
	return nil
}

func (w *Writer) windowOf(ns int64) int64 {
	wl := int64(w.opt.Window)
	return ns - ((ns%wl)+wl)%wl
}

// merge rewrites, per finished window, the sealed small shards whose spans
// all fall in it into one shard with large batches. The new shard is built
// under a temporary name, renamed, listed in the manifest in place of its
// sources, and only then are the sources deleted. A window whose merge
// the disk has no room for waits (headroom.go).
func (w *Writer) merge() error {
	w.mu.Lock()
	cutoff := w.opt.Now().Add(-2 * w.opt.SealInterval).UnixNano()
	groups := map[int64][]ShardEntry{}
	for _, s := range w.manifest.Shards {
		if s.Merged {
			continue
		}
		win := w.windowOf(s.MinNs)
		if w.windowOf(s.MaxNs) != win || win+int64(w.opt.Window) > cutoff {
			continue
		}
		groups[win] = append(groups[win], s)
	}
	w.mu.Unlock()
	wins := make([]int64, 0, len(groups))
	for win, g := range groups {
		if len(g) >= 2 {
			wins = append(wins, win)
		}
	}
	sort.Slice(wins, func(i, j int) bool { return wins[i] < wins[j] })
	waiting := 0
	defer func() {
		w.mu.Lock()
		w.space.mergesWaiting = waiting
		w.mu.Unlock()
	}()
	for _, win := range wins {
		srcs := groups[win]
		sort.SliceStable(srcs, func(i, j int) bool { return srcs[i].MinNs < srcs[j].MinNs })
		name := fmt.Sprintf("w-%020d-%020d", win, srcs[0].MinNs)
		if !w.startMerge(name, srcs) {
			waiting++
			continue
		}
		err := w.mergeWindow(win, name, srcs)
		w.mu.Lock()
		w.space.mergeNeed, w.space.mergeTmp, w.space.merging = 0, "", nil
		w.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// startMerge reserves the room the merge of srcs into name needs, and
// leaves room for the head shard's next batch and seal besides; false:
// the merge waits.
func (w *Writer) startMerge(name string, srcs []ShardEntry) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	keep := map[string]bool{}
	listed := map[string]bool{}
	for _, s := range w.manifest.Shards {
		listed[s.Name] = true
	}
	var bytes int64
	for _, s := range srcs {
		if !listed[s.Name] {
			return false // retention deleted it meanwhile: the window is merged later
		}
		keep[s.Name] = true
		bytes += s.Bytes
	}
	need := w.mergeNeed(bytes)
	total := need + 2*max(w.space.lastNeed, w.overhead())
	room := w.roomLocked()
	if total > room && w.budgetShort(total) && total <= w.opt.DiskBudget/2 && w.retainForLocked(total-room, keep) {
		room = w.roomLocked()
	}
	if total > room {
		w.space.mergesWaiting++
		w.logMergeWait(total, room)
		return false
	}
	w.space.mergeNeed, w.space.mergeTmp, w.space.merging = need, name+".tmp", keep
	return true
}

func (w *Writer) mergeWindow(win int64, name string, srcs []ShardEntry) error {
	tmp := filepath.Join(w.nodeDir, name+".tmp")
	os.RemoveAll(tmp)
	sw, err := openShardWriter(tmp, w.opt.Node, true, 0)
	if err != nil {
		return err
	}
	sw.meta.Layout = layoutBlocks // copying moves index records: merges write layout 2
	for _, s := range srcs {
		sh, err := w.opener.openOnce(filepath.Join(w.nodeDir, s.Name), s)
		if err == nil {
			err = sw.copyShard(sh)
			sh.close()
		}
		w.opener.forget(filepath.Join(w.nodeDir, s.Name)) // read once: its sources leave the manifest below
		if err != nil {
			sw.abort() // without writing an index
			os.RemoveAll(tmp)
			return fmt.Errorf("merging: %w", err)
		}
	}
	meta := sw.meta
	if err := sw.close(); err != nil {
		// The sources' blocks are decoded as the index is written: a
		// damaged one fails the merge here, and the sources stay.
		os.RemoveAll(tmp)
		return fmt.Errorf("merging: %w", err)
	}
	files, err := w.sealFiles(tmp, false)
	if err != nil {
		return fmt.Errorf("merging: %w", err)
	}
	final := filepath.Join(w.nodeDir, name)
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("merging: %w", err)
	}
	names := make([]string, len(srcs))
	drop := map[string]bool{}
	for i, s := range srcs {
		names[i] = s.Name
		drop[s.Name] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.manifest.Shards[:0]
	for _, s := range w.manifest.Shards {
		if !drop[s.Name] {
			kept = append(kept, s)
		}
	}
	e := meta.entry(name, dirSize(final), files)
	e.Merged, e.Sources = true, names
	w.manifest.Shards = append(kept, e)
	w.obsolete = append(w.obsolete, names...)
	if err := w.commitManifestLocked(); err != nil {
		return err
	}
	w.log.Debug("merged shards", "window", time.Unix(0, win).UTC(), "sources", len(srcs), "spans", meta.Spans)
	return nil
}

// retain drops whole shards: those whose newest span is older than
// RetentionAge, then the oldest while the node directory holds more than
// DiskBudget.
func (w *Writer) retain() error {
	if w.opt.RetentionAge <= 0 && w.opt.DiskBudget <= 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	sort.Slice(w.manifest.Shards, func(i, j int) bool { return w.manifest.Shards[i].MinNs < w.manifest.Shards[j].MinNs })
	oldest := w.opt.Now().Add(-w.opt.RetentionAge).UnixNano()
	var aged []string
	for _, s := range w.manifest.Shards {
		if w.opt.RetentionAge > 0 && s.MaxNs < oldest && (w.opt.Keep == nil || !w.opt.Keep(s.Name)) && !w.space.merging[s.Name] {
			aged = append(aged, s.Name)
		}
	}
	n := w.deleteShardsLocked(aged, &w.space.deletedAge)
	if w.opt.DiskBudget > 0 {
		used, _ := w.usedLocked()
		n += w.dropOldestLocked(used-w.opt.DiskBudget, nil)
	}
	if n == 0 {
		return nil
	}
	w.log.Info("retention dropped shards", "shards", n)
	return w.commitManifestLocked()
}

// retainForLocked, when a step would take the node directory over the
// disk budget, deletes the oldest shards (not those in keep, nor a merge's
// sources) that free short bytes, the room the step lacks; if even all of
// them would not, it deletes none. It reports whether it deleted any.
func (w *Writer) retainForLocked(short int64, keep map[string]bool) bool {
	var deletable int64
	for _, s := range w.manifest.Shards {
		if !keep[s.Name] && !w.space.merging[s.Name] {
			deletable += s.Bytes
		}
	}
	if deletable < short {
		return false
	}
	n := w.dropOldestLocked(short, keep)
	if n == 0 {
		return false
	}
	w.log.Info("disk budget: dropped the oldest shards to make room", "shards", n, "bytes", short, "budget", w.opt.DiskBudget)
	if err := w.commitManifestLocked(); err != nil {
		w.log.Error("store: writing the manifest", "err", err)
	}
	return true
}

// dropOldestLocked deletes the oldest shards until over bytes are freed
// and returns how many it deleted.
func (w *Writer) dropOldestLocked(over int64, keep map[string]bool) int {
	if over <= 0 {
		return 0
	}
	sort.Slice(w.manifest.Shards, func(i, j int) bool { return w.manifest.Shards[i].MinNs < w.manifest.Shards[j].MinNs })
	var names []string
	for _, s := range w.manifest.Shards {
		if over <= 0 {
			break
		}
		if keep[s.Name] || w.space.merging[s.Name] {
			continue
		}
		names = append(names, s.Name)
		over -= s.Bytes
	}
	return w.deleteShardsLocked(names, &w.space.deletedBudget)
}

// deleteShardsLocked takes shards out of the manifest (their directories
// go once it is written) and counts their spans.
func (w *Writer) deleteShardsLocked(names []string, spans *atomic.Uint64) int {
	if len(names) == 0 {
		return 0
	}
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	kept := w.manifest.Shards[:0]
	for _, s := range w.manifest.Shards {
		if drop[s.Name] {
			spans.Add(uint64(s.Spans))
			continue
		}
		kept = append(kept, s)
	}
	w.manifest.Shards = kept
	w.obsolete = append(w.obsolete, names...)
	return len(names)
}

// recoverHeadLocked seals a head shard a crash left (replaying its log)
// and lists it, if the disk has room for that; false: it waits.
func (w *Writer) recoverHeadLocked(name string) (bool, error) {
	dir := filepath.Join(w.nodeDir, name)
	wal := dirSize(dir)
	// Even reading the shard maps its log, and on a tmpfs a read of the
	// unwritten pages past its end takes pages too.
	if room := w.roomLocked(); room < w.overhead() {
		w.space.unrecovered = append(w.space.unrecovered, name)
		w.warnLocked("store: a head shard a crash left waits for disk space to be sealed", "shard", name, "room", room)
		return false, nil
	}
	idx, err := headIndexBytes(dir)
	if err != nil {
		idx = 4 * wal // cannot read it before replaying: at most this much index per byte of batches
	}
	// Reopening replays the log into a table, sealing writes the index
	// and one more table.
	need := sstBytes(wal, w.space.block) + w.sealNeed(wal, idx)
	room := w.roomLocked()
	if need > room && w.budgetShort(need) && w.retainForLocked(need-room, nil) {
		room = w.roomLocked()
	}
	if need > room {
		w.space.unrecovered = append(w.space.unrecovered, name)
		w.warnLocked("store: a head shard a crash left waits for disk space to be sealed", "shard", name, "need", need, "room", room)
		return false, nil
	}
	// Killed between sealing the files and listing them: make them
	// writable again for the replay (the owner may, without root).
	if err := chmodFiles(dir, 0o640); err != nil {
		return false, fmt.Errorf("recovering head shard: %w", err)
	}
	sw, err := openShardWriter(dir, w.opt.Node, false, 0)
	if err != nil {
		return false, fmt.Errorf("recovering head shard: %w", err)
	}
	meta := sw.meta
	if err := sw.close(); err != nil {
		return false, err
	}
	if meta.Spans == 0 {
		os.RemoveAll(dir)
		return false, nil
	}
	files, err := w.sealFiles(dir, true)
	if err != nil {
		return false, fmt.Errorf("recovering head shard: %w", err)
	}
	w.manifest.Shards = append(w.manifest.Shards, meta.entry(name, dirSize(dir), files))
	w.log.Info("recovered unsealed shard", "shard", name, "spans", meta.Spans)
	return true, nil
}

// headIndexBytes is the size of the index records of a head shard a crash
// left, read without writing: Badger replays its log into memory only.
func headIndexBytes(dir string) (int64, error) {
	db, err := badger.Open(badgerOptions(dir, true))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	sw := &shardWriter{dir: dir, db: db}
	if err := sw.rebuildRecords(); err != nil {
		return 0, err
	}
	return sw.recBytes(), nil
}
