package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// WriterOptions configure a Writer. Zero values take the defaults.
type WriterOptions struct {
	Dir  string // data directory; shards go to Dir/<Node>/
	Node string

	BatchRows     int           // cut a batch at this many spans (default 4096, at most 32768)
	BatchInterval time.Duration // or this long after its first span (default 1 s)
	SealInterval  time.Duration // seal the head shard this often (default 2 s)
	Window        time.Duration // merge sealed shards per window of this length (default 1 min)
	MergedRows    int           // at most 32768; unused since layout 2: merges copy the head batches as they are (ADR 0004)
	RetentionAge  time.Duration // drop shards whose newest span is older (0: keep)
	// DiskBudget bounds what the node directory holds, everything counted
	// (head shard, merges in progress, Badger's files): the oldest shards
	// are dropped to stay within it (0: no budget; DefaultDiskBudget is
	// the collector's default).
	DiskBudget int64
	// MinFree is the free space the writer leaves on the filesystem: new
	// spans are dropped rather than written into it (0: none, but the
	// writer still never starts a step the free space cannot hold;
	// DefaultMinFree is the collector's default). headroom.go.
	MinFree int64
	// Keep, if set, holds back retention by age for the shards it returns
	// true for (the object-store uploader: shards not yet uploaded). The
	// disk budget still applies to them.
	Keep         func(shard string) bool
	Group        string // group (name or id) that may read sealed shards (default: the writer's group)
	NoBackground bool   // no timers: the caller calls Flush, Seal and Maintain (tests, benchmarks)
	Logger       *slog.Logger
	Now          func() time.Time // clock for sealing, merging and retention (default time.Now)
}

func (o *WriterOptions) defaults() error {
	if o.Dir == "" || o.Node == "" {
		return errors.New("store writer needs a data directory and a node name")
	}
	if strings.ContainsAny(o.Node, `/\`) || o.Node == "." || o.Node == ".." {
		return fmt.Errorf("node name %q is not a valid directory name", o.Node)
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 4096
	}
	if o.BatchInterval <= 0 {
		o.BatchInterval = time.Second
	}
	if o.SealInterval <= 0 {
		o.SealInterval = 2 * time.Second
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.MergedRows <= 0 {
		o.MergedRows = 16384
	}
	if o.BatchRows > arrowipc.MaxBatchRows || o.MergedRows > arrowipc.MaxBatchRows {
		return fmt.Errorf("store writer: batch rows %d and merged rows %d must be at most %d", o.BatchRows, o.MergedRows, arrowipc.MaxBatchRows)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Modes of the data a writer seals: the owner may delete it (retention,
// merges), the group may read it, nobody writes to it again.
const (
	sealedDirMode  = 0o750
	sealedFileMode = 0o440
)

// Writer writes the spans of one node. It is safe for concurrent use.
type Writer struct {
	opt     WriterOptions
	nodeDir string
	log     *slog.Logger

	mu       sync.Mutex // guards everything below and the shard files
	pending  []span.Span
	firstAt  time.Time // when the first pending span arrived
	head     *shardWriter
	headName string
	headAt   time.Time
	enc      *batchEncoder
	manifest *Manifest
	// manifestEnc writes the manifest, keeping its entries' encoding.
	manifestEnc manifestEncoder
	closed      bool
	gid         int // -1: leave the group as created
	opener      opener
	space       spaceState
	sealIdx     *shardWrite // the head's encoded index while its seal waits for room
	headMem     int64       // the next head's memtable (headMemFor)
	// manifestDirty: the manifest in memory waits for disk space to be
	// written; obsolete shards go once it is.
	manifestDirty bool
	obsolete      []string

	stop chan struct{}
	done sync.WaitGroup
}

// OpenWriter opens (or creates) the node directory, recovers shards a crash
// left out of the manifest, and starts the batch, seal and merge timers.
func OpenWriter(opt WriterOptions) (*Writer, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	w := &Writer{opt: opt, nodeDir: filepath.Join(opt.Dir, opt.Node), log: opt.Logger.With("node", opt.Node),
		enc: newBatchEncoder(), stop: make(chan struct{}), gid: -1}
	w.space.block, w.space.idxRatio = 4096, 0.5 // measured: 0.22, and 1.25 times that after the first seal
	if err := os.MkdirAll(w.nodeDir, sealedDirMode); err != nil {
		return nil, fmt.Errorf("creating node directory: %w", err)
	}
	if err := writable(w.nodeDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if opt.Group != "" {
		gid, err := lookupGroup(opt.Group)
		if err != nil {
			return nil, err
		}
		w.gid = gid
		// The reader needs to traverse the data and node directories.
		for _, d := range []string{opt.Dir, w.nodeDir} {
			if err := os.Lchown(d, -1, gid); err != nil {
				return nil, fmt.Errorf("giving %s to group %s: %w", d, opt.Group, err)
			}
			if err := os.Chmod(d, sealedDirMode); err != nil {
				return nil, fmt.Errorf("setting the mode of %s: %w", d, err)
			}
		}
	}
	if err := w.recover(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.probeLocked()
	w.mu.Unlock()
	if !opt.NoBackground {
		w.done.Add(1)
		go w.loop()
	}
	return w, nil
}

// recover loads the manifest and reconciles it with the directories: a head
// shard not listed (the writer died before sealing it) is reopened, which
// replays its write-ahead log, sealed and listed; a half-written merge and the
// leftovers of a finished one are removed.
func (w *Writer) recover() error {
	m, err := readManifest(w.nodeDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		m = &Manifest{Version: manifestVersion, Node: w.opt.Node}
	case err != nil:
		return fmt.Errorf("recovering: %w", err)
	}
	w.manifest = m
	listed := map[string]bool{}
	replaced := map[string]bool{}
	for _, s := range m.Shards {
		listed[s.Name] = true
		for _, src := range s.Sources {
			replaced[src] = true
		}
	}
	ents, err := os.ReadDir(w.nodeDir)
	if err != nil {
		return fmt.Errorf("recovering: %w", err)
	}
	changed := false
	var heads []string
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || listed[name] {
			continue
		}
		if strings.HasPrefix(name, "h-") && !replaced[name] {
			heads = append(heads, name)
			continue
		}
		// A merge output never listed, or a merge source already replaced.
		w.log.Info("removing leftover shard", "shard", name)
		if err := os.RemoveAll(filepath.Join(w.nodeDir, name)); err != nil {
			return fmt.Errorf("recovering: %w", err)
		}
	}
	for _, name := range heads {
		ok, err := w.recoverHeadLocked(name) // waits for Maintain when the disk has no room for it
		if err != nil {
			return err
		}
		changed = changed || ok
	}
	// Shards sealed before checksums existed get them now: this writer (or
	// its predecessor) wrote them, readers refuse them until they have sums.
	for i := range w.manifest.Shards {
		e := &w.manifest.Shards[i]
		if e.Files != nil {
			continue
		}
		files, err := w.sealFiles(filepath.Join(w.nodeDir, e.Name), false)
		if err != nil {
			return fmt.Errorf("recovering: %w", err)
		}
		e.Files = files
		changed = true
		w.log.Info("recorded checksums of an older shard", "shard", e.Name)
	}
	// Sources of merged shards that are still listed were never deleted.
	if _, err := os.Stat(filepath.Join(w.nodeDir, ManifestName)); changed || errors.Is(err, os.ErrNotExist) {
		return w.commitManifestLocked()
	}
	return nil
}

func (w *Writer) loop() {
	defer w.done.Done()
	tick := time.NewTicker(min(w.opt.BatchInterval, w.opt.SealInterval) / 4)
	defer tick.Stop()
	lastMaint := time.Now()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		now := w.opt.Now()
		w.mu.Lock()
		var err error
		if len(w.pending) > 0 && now.Sub(w.firstAt) >= w.opt.BatchInterval {
			err = w.flushLocked()
		}
		if err == nil && w.head != nil && now.Sub(w.headAt) >= w.opt.SealInterval {
			err = w.sealLocked()
		}
		w.mu.Unlock()
		if err != nil {
			w.log.Error("store writer", "err", err)
		}
		if time.Since(lastMaint) >= 5*time.Second {
			lastMaint = time.Now()
			if err := w.Maintain(); err != nil {
				w.log.Error("store maintenance", "err", err)
			}
		}
	}
}

// Batching returns the rows and the interval batches are cut at (the
// options' BatchRows and BatchInterval, defaults applied): a caller that
// hands Write whole batches has them encoded where it holds them.
func (w *Writer) Batching() (rows int, interval time.Duration) {
	return w.opt.BatchRows, w.opt.BatchInterval
}

// Write buffers spans; a batch is cut when BatchRows are pending. Whole
// batches of the caller's spans are encoded from its slice, without a
// copy into the pending spans (688 bytes each).
func (w *Writer) Write(spans ...span.Span) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("store writer is closed")
	}
	rows := w.opt.BatchRows
	for len(spans) > 0 {
		if len(w.pending) == 0 && len(spans) >= rows {
			if err := w.writeBatchLocked(spans[:rows]); err != nil {
				w.keepPending(spans[rows:])
				return err
			}
			spans = spans[rows:]
			continue
		}
		k := min(len(spans), rows-len(w.pending))
		w.keepPending(spans[:k])
		spans = spans[k:]
		if len(w.pending) >= rows {
			if err := w.flushLocked(); err != nil {
				w.keepPending(spans)
				return err
			}
		}
	}
	return nil
}

// keepPending adds spans to the pending ones.
func (w *Writer) keepPending(spans []span.Span) {
	if len(spans) == 0 {
		return
	}
	if len(w.pending) == 0 {
		w.firstAt = w.opt.Now()
	}
	w.pending = append(w.pending, spans...)
}

// Flush cuts the pending spans into a batch now.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	return w.flushRows(len(w.pending))
}

func (w *Writer) flushRows(n int) error {
	if n == 0 {
		return nil
	}
	err := w.writeBatchLocked(w.pending[:n])
	rest := copy(w.pending, w.pending[n:])
	clear(w.pending[rest:])
	w.pending = w.pending[:rest]
	if rest > 0 {
		w.firstAt = w.opt.Now()
	}
	return err
}

// writeBatchLocked writes spans as a batch of the head shard, or drops
// them, counted, when the disk has no room for it (headroom.go).
func (w *Writer) writeBatchLocked(spans []span.Span) error {
	room := w.roomLocked()
	if room < w.overhead() {
		w.dropLocked(len(spans), DropDisk, w.overhead(), room)
		return nil
	}
	if w.head == nil {
		now := w.opt.Now()
		name := fmt.Sprintf("h-%020d", now.UnixNano())
		for i := 1; ; i++ { // unique even when the clock repeats
			if _, err := os.Stat(filepath.Join(w.nodeDir, name)); errors.Is(err, os.ErrNotExist) {
				break
			}
			name = fmt.Sprintf("h-%020d", now.UnixNano()+int64(i))
		}
		sw, err := openShardWriter(filepath.Join(w.nodeDir, name), w.opt.Node, false, w.headMem)
		if err != nil {
			w.dropLocked(len(spans), DropError, 0, 0)
			return err
		}
		w.head, w.headName, w.headAt = sw, name, now
		room = w.roomLocked()
	}
	sws, err := w.head.prepare(spans, w.enc)
	if err != nil {
		w.dropLocked(len(spans), DropError, 0, 0)
		return err
	}
	need := w.batchNeed(sws)
	if room, ok := w.admitLocked(need, room); !ok {
		w.dropLocked(len(spans), DropDisk, need, room)
		return nil
	}
	n, err := w.head.commit(sws...)
	w.space.stored.Add(uint64(n))
	w.sealIdx = nil
	if err != nil {
		w.dropLocked(len(spans)-n, DropError, 0, 0)
		return err
	}
	w.space.lastNeed = need
	if !w.space.sealWaits {
		w.roomBackLocked()
	}
	return nil
}

// Seal flushes the pending spans and seals the head shard: closes it and
// lists it in the manifest, after which readers see it.
func (w *Writer) Seal() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.flushLocked(); err != nil {
		return err
	}
	return w.sealLocked()
}

func (w *Writer) sealLocked() error {
	h := w.head
	if h == nil {
		return nil
	}
	dir := filepath.Join(w.nodeDir, w.headName)
	if h.meta.Batches == 0 { // every batch was dropped
		w.head = nil
		err := h.close()
		os.RemoveAll(dir)
		return err
	}
	raw := h.recBytes()
	if w.sealIdx == nil {
		idx, err := h.encodeIndex()
		if err != nil { // a head's records are in memory: nothing to decode
			return err
		}
		w.sealIdx = idx
	}
	var idx int64
	if w.sealIdx != nil {
		idx = w.sealIdx.walBytes()
	}
	need := w.sealNeed(h.wal, idx)
	if room, ok := w.admitLocked(need, w.roomLocked()); !ok {
		w.space.sealWaits = true // batches wait with it: each needs the seal's room too
		w.shortLocked(need, room)
		return nil
	}
	w.space.sealWaits = false
	w.head = nil
	if w.sealIdx != nil {
		_, err := h.commit(w.sealIdx)
		w.sealIdx = nil
		if err != nil {
			h.db.Close()
			return fmt.Errorf("writing the index of %s: %w", dir, err)
		}
		if raw > 0 { // what the next heads' batches expect their index to take
			w.space.idxRatio = min(2, max(0.05, 1.25*float64(idx)/float64(raw)))
		}
	}
	w.headMem = headMemFor(h.mem)
	if err := h.close(); err != nil {
		return err
	}
	files, err := w.sealFiles(dir, true)
	if err != nil {
		return err
	}
	w.manifest.Shards = append(w.manifest.Shards, h.meta.entry(w.headName, dirSize(dir), files))
	return w.commitManifestLocked()
}

// Close stops the timers, flushes, seals and releases the writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.flushLocked()
	if serr := w.sealLocked(); err == nil {
		err = serr
	}
	if w.head != nil {
		// Its Badger stays open: closing it flushes its memtable into a
		// table file the disk may not back (headroom.go).
		err = errors.Join(err, fmt.Errorf("head shard %s left unsealed: not enough disk space; it is sealed at the next start once there is", w.headName))
	}
	if w.manifestDirty {
		err = errors.Join(err, errors.New("the node manifest was not written: not enough disk space; the next start writes it"))
	}
	return err
}

// sealFiles makes a closed shard read-only for its owner and readable by
// the data group, and returns the checksums of its files. With remember
// (a head shard, which this writer's merge reads next) the opener keeps
// the files' stamps: the merge does not hash them again.
func (w *Writer) sealFiles(dir string, remember bool) ([]FileSum, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sealing %s: %w", dir, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := w.setMode(filepath.Join(dir, e.Name()), sealedFileMode); err != nil {
			return nil, err
		}
	}
	if err := w.setMode(dir, sealedDirMode); err != nil {
		return nil, err
	}
	files, stamps, err := sumShardStamped(dir)
	if err == nil && remember {
		w.opener.remember(dir, stamps)
	}
	return files, err
}

func (w *Writer) setMode(path string, mode os.FileMode) error {
	if w.gid >= 0 {
		if err := os.Lchown(path, -1, w.gid); err != nil {
			return fmt.Errorf("sealing: %w", err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("sealing: %w", err)
	}
	return nil
}

func chmodFiles(dir string, mode os.FileMode) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if err := os.Chmod(filepath.Join(dir, e.Name()), mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookupGroup resolves a group name or numeric id.
func lookupGroup(g string) (int, error) {
	if id, err := strconv.Atoi(g); err == nil && id >= 0 {
		return id, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("data group: %w", err)
	}
	id, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return 0, fmt.Errorf("data group %s: gid %q is not a number", g, grp.Gid)
	}
	return id, nil
}

// Manifest returns a copy of the node's manifest.
func (w *Writer) Manifest() Manifest {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := *w.manifest
	m.Shards = append([]ShardEntry(nil), m.Shards...)
	return m
}
