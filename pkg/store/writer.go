package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
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
	DiskBudget    int64         // drop oldest shards while the node uses more bytes (0: no budget)
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
	if o.BatchRows > maxBatchRows || o.MergedRows > maxBatchRows {
		return fmt.Errorf("store writer: batch rows %d and merged rows %d must be at most %d", o.BatchRows, o.MergedRows, maxBatchRows)
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
	builder  *span.Builder
	manifest *Manifest
	closed   bool
	gid      int // -1: leave the group as created
	opener   opener

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
		builder: span.NewBuilder(nil), stop: make(chan struct{}), gid: -1}
	if err := os.MkdirAll(w.nodeDir, sealedDirMode); err != nil {
		return nil, fmt.Errorf("creating node directory: %w", err)
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
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || listed[name] {
			continue
		}
		dir := filepath.Join(w.nodeDir, name)
		switch {
		case strings.HasPrefix(name, "h-") && !replaced[name]:
			// Killed between sealing the files and listing them: make them
			// writable again for the replay (the owner may, without root).
			if err := chmodFiles(dir, 0o640); err != nil {
				return fmt.Errorf("recovering head shard: %w", err)
			}
			sw, err := openShardWriter(dir, w.opt.Node, false)
			if err != nil {
				return fmt.Errorf("recovering head shard: %w", err)
			}
			meta := sw.meta
			if err := sw.close(); err != nil {
				return err
			}
			if meta.Spans == 0 {
				os.RemoveAll(dir)
				continue
			}
			files, err := w.sealFiles(dir)
			if err != nil {
				return fmt.Errorf("recovering head shard: %w", err)
			}
			w.manifest.Shards = append(w.manifest.Shards, meta.entry(name, dirSize(dir), files))
			changed = true
			w.log.Info("recovered unsealed shard", "shard", name, "spans", meta.Spans)
		default: // merge output never listed, or a merge source already replaced
			w.log.Info("removing leftover shard", "shard", name)
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("recovering: %w", err)
			}
		}
	}
	// Shards sealed before checksums existed get them now: this writer (or
	// its predecessor) wrote them, readers refuse them until they have sums.
	for i := range w.manifest.Shards {
		e := &w.manifest.Shards[i]
		if e.Files != nil {
			continue
		}
		files, err := w.sealFiles(filepath.Join(w.nodeDir, e.Name))
		if err != nil {
			return fmt.Errorf("recovering: %w", err)
		}
		e.Files = files
		changed = true
		w.log.Info("recorded checksums of an older shard", "shard", e.Name)
	}
	// Sources of merged shards that are still listed were never deleted.
	if changed {
		return writeManifest(w.nodeDir, w.manifest)
	}
	if _, err := os.Stat(filepath.Join(w.nodeDir, ManifestName)); errors.Is(err, os.ErrNotExist) {
		return writeManifest(w.nodeDir, w.manifest)
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

// Write buffers spans; a batch is cut when BatchRows are pending.
func (w *Writer) Write(spans ...span.Span) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("store writer is closed")
	}
	if len(w.pending) == 0 {
		w.firstAt = w.opt.Now()
	}
	w.pending = append(w.pending, spans...)
	for len(w.pending) >= w.opt.BatchRows {
		if err := w.flushRows(w.opt.BatchRows); err != nil {
			return err
		}
	}
	return nil
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
	if w.head == nil {
		now := w.opt.Now()
		name := fmt.Sprintf("h-%020d", now.UnixNano())
		for i := 1; ; i++ { // unique even when the clock repeats
			if _, err := os.Stat(filepath.Join(w.nodeDir, name)); errors.Is(err, os.ErrNotExist) {
				break
			}
			name = fmt.Sprintf("h-%020d", now.UnixNano()+int64(i))
		}
		sw, err := openShardWriter(filepath.Join(w.nodeDir, name), w.opt.Node, false)
		if err != nil {
			return err
		}
		w.head, w.headName, w.headAt = sw, name, now
	}
	if err := w.head.write(w.pending[:n], w.builder); err != nil {
		return err
	}
	rest := copy(w.pending, w.pending[n:])
	clear(w.pending[rest:])
	w.pending = w.pending[:rest]
	if rest > 0 {
		w.firstAt = w.opt.Now()
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
	if w.head == nil {
		return nil
	}
	h, name := w.head, w.headName
	w.head = nil
	if err := h.close(); err != nil {
		return err
	}
	dir := filepath.Join(w.nodeDir, name)
	files, err := w.sealFiles(dir)
	if err != nil {
		return err
	}
	w.manifest.Shards = append(w.manifest.Shards, h.meta.entry(name, dirSize(dir), files))
	return writeManifest(w.nodeDir, w.manifest)
}

// Maintain merges the small shards of finished windows and applies
// retention. The background loop calls it every 5 s.
func (w *Writer) Maintain() error {
	if err := w.merge(); err != nil {
		return err
	}
	return w.retain()
}

func (w *Writer) windowOf(ns int64) int64 {
	wl := int64(w.opt.Window)
	return ns - ((ns%wl)+wl)%wl
}

// merge rewrites, per finished window, the sealed small shards whose spans
// all fall in it into one shard with large batches. The new shard is built
// under a temporary name, renamed, listed in the manifest in place of its
// sources, and only then are the sources deleted.
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
	for _, win := range wins {
		if err := w.mergeWindow(win, groups[win]); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) mergeWindow(win int64, srcs []ShardEntry) error {
	name := fmt.Sprintf("w-%020d-%020d", win, srcs[0].MinNs)
	tmp := filepath.Join(w.nodeDir, name+".tmp")
	os.RemoveAll(tmp)
	sort.SliceStable(srcs, func(i, j int) bool { return srcs[i].MinNs < srcs[j].MinNs })
	sw, err := openShardWriter(tmp, w.opt.Node, true)
	if err != nil {
		return err
	}
	sw.meta.Layout = layoutBlocks // copying moves index records: merges write layout 2
	for _, s := range srcs {
		sh, err := w.opener.open(filepath.Join(w.nodeDir, s.Name), s)
		if err == nil {
			err = sw.copyShard(sh)
			sh.close()
		}
		w.opener.forget(filepath.Join(w.nodeDir, s.Name)) // read once: its sources leave the manifest below
		if err != nil {
			sw.db.Close() // without writing an index
			os.RemoveAll(tmp)
			return fmt.Errorf("merging: %w", err)
		}
	}
	meta := sw.meta
	if err := sw.close(); err != nil {
		return err
	}
	files, err := w.sealFiles(tmp)
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
	kept := w.manifest.Shards[:0]
	for _, s := range w.manifest.Shards {
		if !drop[s.Name] {
			kept = append(kept, s)
		}
	}
	e := meta.entry(name, dirSize(final), files)
	e.Merged, e.Sources = true, names
	w.manifest.Shards = append(kept, e)
	err = writeManifest(w.nodeDir, w.manifest)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	for _, n := range names {
		os.RemoveAll(filepath.Join(w.nodeDir, n))
	}
	w.log.Debug("merged shards", "window", time.Unix(0, win).UTC(), "sources", len(srcs), "spans", meta.Spans)
	return nil
}

// retain drops whole shards: those whose newest span is older than
// RetentionAge, then the oldest while the node exceeds DiskBudget.
func (w *Writer) retain() error {
	if w.opt.RetentionAge <= 0 && w.opt.DiskBudget <= 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	sort.Slice(w.manifest.Shards, func(i, j int) bool { return w.manifest.Shards[i].MinNs < w.manifest.Shards[j].MinNs })
	var total int64
	for _, s := range w.manifest.Shards {
		total += s.Bytes
	}
	oldest := w.opt.Now().Add(-w.opt.RetentionAge).UnixNano()
	var drop []string
	kept := w.manifest.Shards[:0]
	for _, s := range w.manifest.Shards {
		expired := w.opt.RetentionAge > 0 && s.MaxNs < oldest && (w.opt.Keep == nil || !w.opt.Keep(s.Name))
		if expired || (w.opt.DiskBudget > 0 && total > w.opt.DiskBudget) {
			drop = append(drop, s.Name)
			total -= s.Bytes
			continue
		}
		kept = append(kept, s)
	}
	if len(drop) == 0 {
		return nil
	}
	w.manifest.Shards = kept
	if err := writeManifest(w.nodeDir, w.manifest); err != nil {
		return err
	}
	for _, n := range drop {
		os.RemoveAll(filepath.Join(w.nodeDir, n))
	}
	w.log.Info("retention dropped shards", "shards", len(drop))
	return nil
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
	w.builder.Release()
	return err
}

// sealFiles makes a closed shard read-only for its owner and readable by
// the data group, and returns the checksums of its files.
func (w *Writer) sealFiles(dir string) ([]FileSum, error) {
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
	return sumShard(dir)
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
