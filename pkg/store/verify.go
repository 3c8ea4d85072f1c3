package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// FileSum is the size and SHA-256 of one file of a sealed shard, recorded in
// the manifest when the shard is sealed.
type FileSum struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// errNoSums marks a shard sealed before checksums were recorded.
var errNoSums = errors.New("no file checksums recorded (sealed by an older collector): " +
	"start `zerotrace collect` on this node once to record them")

// sumShard lists every regular file of a closed shard with its checksum.
func sumShard(dir string) ([]FileSum, error) {
	out, _, err := sumShardStamped(dir)
	return out, err
}

// sumShardStamped is sumShard that also returns the stamp of every file
// that did not change while it was hashed (same size, the bytes hashed,
// and modification time before and after): a verifier given them
// (remember) need not hash those files again.
func sumShardStamped(dir string) ([]FileSum, map[string]fileStamp, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("checksumming shard: %w", err)
	}
	var out []FileSum
	stamps := map[string]fileStamp{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		sum, size, stamp, err := hashFileStamped(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("checksumming shard: %w", err)
		}
		out = append(out, FileSum{Name: e.Name(), Size: size, SHA256: sum})
		if stamp != (fileStamp{}) {
			stamps[e.Name()] = stamp
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, stamps, nil
}

func hashFile(path string) (string, int64, error) {
	sum, n, _, err := hashFileStamped(path)
	return sum, n, err
}

// hashFileStamped hashes the file at path; the stamp is zero unless the
// file's size and modification time were the same before and after and
// the size is what was hashed.
func hashFileStamped(path string) (string, int64, fileStamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fileStamp{}, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return "", 0, fileStamp{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fileStamp{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	after, err := f.Stat()
	if err != nil || after.Size() != n || before.Size() != n || !after.ModTime().Equal(before.ModTime()) {
		return sum, n, fileStamp{}, nil
	}
	return sum, n, fileStamp{n, after.ModTime(), sum}, nil
}

// verifier checks shard files against their recorded checksums. A file
// whose size and modification time are unchanged since it last matched is
// not hashed again.
type verifier struct {
	mu   sync.Mutex
	seen map[string]map[string]fileStamp // shard dir → file name → stamp of the verified file
}

type fileStamp struct {
	size  int64
	mtime time.Time
	sum   string
}

// verify returns nil when every recorded file of the shard in dir exists as
// a regular file with its recorded size and checksum. Files not recorded
// are ignored: they are never opened.
func (v *verifier) verify(dir string, files []FileSum) error {
	if err := v.check(dir, files); err != nil {
		return &verifyError{err}
	}
	return nil
}

// verifyError marks a shard refused by its checksums: a later check may
// find it repaired, unlike a shard Badger could not open.
type verifyError struct{ err error }

func (e *verifyError) Error() string { return e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

func (v *verifier) check(dir string, files []FileSum) error {
	if files == nil {
		return errNoSums
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		st, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("verifying %s: %w", f.Name, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("verifying %s: not a regular file (%s)", f.Name, st.Mode().Type())
		}
		if st.Size() != f.Size {
			return fmt.Errorf("verifying %s: %d bytes, %d recorded at seal time", f.Name, st.Size(), f.Size)
		}
		stamp := fileStamp{st.Size(), st.ModTime(), f.SHA256}
		v.mu.Lock()
		ok := v.seen[dir][f.Name] == stamp
		v.mu.Unlock()
		if ok {
			continue
		}
		sum, _, err := hashFile(p)
		if err != nil {
			return fmt.Errorf("verifying %s: %w", f.Name, err)
		}
		if sum != f.SHA256 {
			return fmt.Errorf("verifying %s: checksum mismatch, the file changed since it was sealed", f.Name)
		}
		v.mu.Lock()
		v.note(dir, f.Name, stamp)
		v.mu.Unlock()
	}
	return nil
}

// note records the stamp of a file that matched its checksum; v.mu is held.
func (v *verifier) note(dir, name string, stamp fileStamp) {
	if v.seen == nil {
		v.seen = map[string]map[string]fileStamp{}
	}
	if v.seen[dir] == nil {
		v.seen[dir] = map[string]fileStamp{}
	}
	v.seen[dir][name] = stamp
}

// known reports whether every file of the shard in dir matched its
// recorded checksum before (its stamp is still checked at open).
func (v *verifier) known(dir string, files []FileSum) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, f := range files {
		if st, ok := v.seen[dir][f.Name]; !ok || st.sum != f.SHA256 || st.size != f.Size {
			return false
		}
	}
	return files != nil
}

// remember records stamps of a shard's files hashed by their writer
// (sumShardStamped), as if each had matched its checksum here: the
// writer's merge then reads the heads it sealed itself without hashing
// them a second time. A file changed since (size or modification time) is
// hashed at its next check as any other.
func (v *verifier) remember(dir string, stamps map[string]fileStamp) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for name, st := range stamps {
		v.note(dir, name, st)
	}
}

// forget drops what is known of a shard that left its manifest.
func (v *verifier) forget(dir string) {
	v.mu.Lock()
	delete(v.seen, dir)
	v.mu.Unlock()
}

// opener opens sealed shards for reading without ever letting Badger touch
// the originals: each shard is verified against its checksums, then opened
// read-only through a private directory of symbolic links to the recorded
// files, removed as soon as Badger has opened them. Whatever Badger removes
// or creates while opening (it deletes table files its manifest does not
// list, and empty value logs, even read-only) happens to links in that
// private directory. See docs/adr/0002-untrusted-shards.md.
type opener struct {
	verifier
}

func (o *opener) open(dir string, e ShardEntry) (*shard, error) { return o.openFor(dir, e, false) }

// openOnce opens a shard read once from start to end (a merge's source):
// without Badger's caches (readOptions).
func (o *opener) openOnce(dir string, e ShardEntry) (*shard, error) { return o.openFor(dir, e, true) }

func (o *opener) openFor(dir string, e ShardEntry, once bool) (*shard, error) {
	files := e.Files
	if err := o.verify(dir, files); err != nil {
		return nil, &ShardError{dir, err}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &ShardError{dir, err}
	}
	priv, err := os.MkdirTemp("", "zerotrace-shard-")
	if err != nil {
		return nil, &ShardError{dir, fmt.Errorf("creating a private directory: %w", err)}
	}
	for _, f := range files {
		if err := os.Symlink(filepath.Join(abs, f.Name), filepath.Join(priv, f.Name)); err != nil {
			os.RemoveAll(priv)
			return nil, &ShardError{dir, fmt.Errorf("linking %s: %w", f.Name, err)}
		}
	}
	db, err := openReadOnly(priv, once)
	// Badger holds every file it needs open (descriptors and mappings) once
	// it has opened: the links can go now, so that nothing is left behind
	// even by a process killed without closing.
	os.RemoveAll(priv)
	if err != nil {
		return nil, &ShardError{dir, err}
	}
	sh := &shard{dir: dir, db: db}
	// What Badger opened must be what was sealed: its meta record counts
	// the spans the manifest lists.
	var meta shardMeta
	err = sh.view(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte{pMeta})
		if err != nil {
			return fmt.Errorf("reading shard meta: %w", err)
		}
		return it.Value(func(v []byte) error { return json.Unmarshal(v, &meta) })
	})
	if err == nil && meta.Spans != e.Spans {
		err = &ShardError{dir, fmt.Errorf("shard holds %d spans, the manifest lists %d", meta.Spans, e.Spans)}
	}
	if err == nil && len(e.SpanIDs) > 0 && !slices.Equal(meta.SpanIDs, e.SpanIDs) {
		err = &ShardError{dir, fmt.Errorf("shard holds span ids %v, the manifest lists %v", meta.SpanIDs, e.SpanIDs)}
	}
	if err == nil {
		err = checkLayout(dir, &meta)
	}
	sh.meta = meta
	if err != nil {
		sh.close()
		return nil, err
	}
	return sh, nil
}

// checkLayout refuses a shard whose index this reader cannot read.
func checkLayout(dir string, m *shardMeta) error {
	switch l := m.layout(); {
	case l > layoutBlocks || l < layoutEntries:
		return &ShardError{dir, fmt.Errorf("shard index layout %d is unknown to this reader (it reads layouts %d and %d): "+
			"upgrade zerotrace to read it", l, layoutEntries, layoutBlocks)}
	case l == layoutBlocks && !m.Indexed && m.Spans > 0:
		return &ShardError{dir, errors.New("shard was sealed without its index blocks")}
	}
	return nil
}
