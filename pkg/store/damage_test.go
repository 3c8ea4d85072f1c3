package store

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/internal/damage"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// twoShards writes 2 requests (76 spans) into a first shard and 2 more into
// a second one, and returns the node directory and the manifest.
func twoShards(t *testing.T, dir string) (string, *Manifest, []span.Span) {
	t.Helper()
	w := openTestWriter(t, dir, nil)
	spans := bookinfo(t, 4)
	w.Write(spans[:76]...)
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	w.Write(spans[76:]...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	nodeDir := filepath.Join(dir, "node-a")
	m, err := readManifest(nodeDir)
	if err != nil || len(m.Shards) != 2 {
		t.Fatalf("manifest: %v, %+v", err, m)
	}
	return nodeDir, m, spans
}

func TestSealRecordsEveryFile(t *testing.T) {
	nodeDir, m, _ := twoShards(t, t.TempDir())
	for _, e := range m.Shards {
		ents, _ := os.ReadDir(filepath.Join(nodeDir, e.Name))
		if len(e.Files) != len(ents) || len(ents) < 4 {
			t.Fatalf("shard %s: %d files recorded, %d on disk", e.Name, len(e.Files), len(ents))
		}
		for i, f := range e.Files {
			if f.Name != ents[i].Name() {
				t.Fatalf("shard %s: recorded %s, on disk %s", e.Name, f.Name, ents[i].Name())
			}
			sum, size, err := hashFile(filepath.Join(nodeDir, e.Name, f.Name))
			if err != nil || sum != f.SHA256 || size != f.Size {
				t.Fatalf("%s/%s: recorded %d %s, on disk %d %s (%v)", e.Name, f.Name, f.Size, f.SHA256, size, sum, err)
			}
			info, _ := ents[i].Info()
			if info.Mode().Perm() != sealedFileMode {
				t.Fatalf("%s/%s: mode %v, want %v", e.Name, f.Name, info.Mode().Perm(), os.FileMode(sealedFileMode))
			}
		}
	}
}

// TestDamagedShardRefused damages one shard (or the manifest) in every way
// of damage.Cases: the reader names it, serves the other shard, and leaves
// every byte of the directory as it found it.
func TestDamagedShardRefused(t *testing.T) {
	pristine := t.TempDir()
	_, m, spans := twoShards(t, pristine)
	var keys []span.Key
	for _, s := range spans {
		keys = s.Keys(keys)
	}
	for _, c := range damage.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			if err := damage.Copy(pristine, dir); err != nil {
				t.Fatal(err)
			}
			nodeDir := filepath.Join(dir, "node-a")
			bad := m.Shards[0].Name
			if err := c.Apply(nodeDir, bad); err != nil {
				t.Fatal(err)
			}
			before, err := damage.Snapshot(dir)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := OpenReader(dir)
			got, err := r.Lookup(context.Background(), 0, t0.Add(time.Hour).UnixNano(), keys)
			verr := r.Verify(context.Background())
			r.Close()
			switch {
			case c.Served:
				if err != nil || verr != nil || len(got) != len(spans) {
					t.Fatalf("want every span served: %d of %d, %v, %v", len(got), len(spans), err, verr)
				}
			case c.Node:
				if err == nil || !strings.Contains(err.Error(), filepath.Join(nodeDir, ManifestName)) || len(got) != 0 {
					t.Fatalf("want the manifest named and nothing served: %d spans, %v", len(got), err)
				}
			default:
				var se *ShardError
				if !errors.As(err, &se) || se.Shard != filepath.Join(nodeDir, bad) {
					t.Fatalf("want a ShardError naming %s, got %v", bad, err)
				}
				if !errors.As(verr, &se) || se.Shard != filepath.Join(nodeDir, bad) {
					t.Fatalf("Verify: want a ShardError naming %s, got %v", bad, verr)
				}
				if len(got) != len(spans)-76 {
					t.Fatalf("the healthy shard answered %d spans, want %d", len(got), len(spans)-76)
				}
			}
			after, err := damage.Snapshot(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := damage.Diff(before, after); d != "" {
				t.Fatalf("the reader changed the data directory:\n%s", d)
			}
		})
	}
}

// TestBadgerNeverTouchesOriginals is the second line of defence: a shard
// whose damage was there when it was sealed (so it verifies) is opened
// through private links, and Badger's manifest recovery, which deletes the
// table files its MANIFEST does not list even read-only, removes a link, not
// the table.
func TestBadgerNeverTouchesOriginals(t *testing.T) {
	dir := t.TempDir()
	nodeDir, m, spans := twoShards(t, dir)
	bad := filepath.Join(nodeDir, m.Shards[0].Name)
	if err := damage.Truncate(10)(filepath.Join(bad, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	// Re-record the sums as if the damage had been sealed.
	files, err := sumShard(bad)
	if err != nil {
		t.Fatal(err)
	}
	m.Shards[0].Files = files
	if err := writeManifest(nodeDir, m); err != nil {
		t.Fatal(err)
	}
	before, _ := damage.Snapshot(dir)
	r, _ := OpenReader(dir)
	got, err := r.Get(context.Background(), 0, 0, ids(spans))
	r.Close()
	after, _ := damage.Snapshot(dir)
	if d := damage.Diff(before, after); d != "" {
		t.Fatalf("Badger changed the shard:\n%s", d)
	}
	var se *ShardError
	if len(got) != len(spans)-76 || !errors.As(err, &se) || se.Shard != bad {
		t.Fatalf("served %d spans, want %d; want an error naming %s: %v", len(got), len(spans)-76, bad, err)
	}
}

// TestOlderShardsRefusedUntilTheWriterRecordsSums: a shard listed without
// checksums (sealed by an older collector) is refused with a notice; the
// next writer to open the node records them.
func TestOlderShardsRefusedUntilTheWriterRecordsSums(t *testing.T) {
	dir := t.TempDir()
	nodeDir, m, spans := twoShards(t, dir)
	b, _ := os.ReadFile(filepath.Join(nodeDir, ManifestName))
	var raw map[string]any
	json.Unmarshal(b, &raw)
	for _, s := range raw["shards"].([]any) {
		delete(s.(map[string]any), "files")
	}
	b, _ = json.Marshal(raw)
	os.WriteFile(filepath.Join(nodeDir, ManifestName), b, 0o644)

	r, _ := OpenReader(dir)
	got, err := r.Get(context.Background(), 0, 0, ids(spans))
	r.Close()
	if len(got) != 0 || !errors.Is(err, errNoSums) {
		t.Fatalf("older shards: %d spans served, %v", len(got), err)
	}
	w := openTestWriter(t, dir, nil)
	w.Close()
	r, _ = OpenReader(dir)
	got, err = r.Get(context.Background(), 0, 0, ids(spans))
	r.Close()
	if len(got) != len(spans) || err != nil {
		t.Fatalf("after the writer: %d of %d spans, %v (shards %v)", len(got), len(spans), err, m.Shards[0].Name)
	}
}

// TestDataGroup: with a data group, the data directory, the node directory
// and every sealed file belong to it, readable and not writable by it.
func TestDataGroup(t *testing.T) {
	testenv.RequireRoot(t) // chown
	dir := t.TempDir()
	w := openTestWriter(t, dir, func(o *WriterOptions) { o.Group = "65534" })
	w.Write(bookinfo(t, 1)...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == filepath.Join(dir, "node-a", ManifestName) {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(sealedFileMode)
		if d.IsDir() {
			want = sealedDirMode
		}
		if gid := fileGID(info); gid != 65534 || info.Mode().Perm() != want {
			t.Errorf("%s: group %d mode %v, want 65534 %v", p, gid, info.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil || n < 6 {
		t.Fatalf("walked %d paths: %v", n, err)
	}
	if _, err := OpenWriter(WriterOptions{Dir: t.TempDir(), Node: "n", Group: "no-such-group-zt"}); err == nil {
		t.Error("unknown group accepted")
	}
}

// TestRecoverSealedButUnlisted: a writer killed after sealing a head's
// files (read-only) but before listing it: the next writer replays it,
// seals it again with checksums and lists it.
func TestRecoverSealedButUnlisted(t *testing.T) {
	dir := t.TempDir()
	nodeDir, m, spans := twoShards(t, dir)
	m.Shards = m.Shards[1:]
	if err := writeManifest(nodeDir, m); err != nil {
		t.Fatal(err)
	}
	w := openTestWriter(t, dir, nil)
	w.Close()
	r, _ := OpenReader(dir)
	defer r.Close()
	got, err := r.Get(context.Background(), 0, 0, ids(spans))
	if err != nil || len(got) != len(spans) {
		t.Fatalf("after recovery: %d of %d spans, %v", len(got), len(spans), err)
	}
	if err := r.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRepairedShardServedAgain: a shard refused by its checksums is served
// again once its files are restored and Verify has seen them.
func TestRepairedShardServedAgain(t *testing.T) {
	dir := t.TempDir()
	nodeDir, m, spans := twoShards(t, dir)
	sst, _ := filepath.Glob(filepath.Join(nodeDir, m.Shards[0].Name, "*.sst"))
	good, err := os.ReadFile(sst[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := damage.Middle(sst[0]); err != nil {
		t.Fatal(err)
	}
	r, _ := OpenReader(dir)
	defer r.Close()
	ctx := context.Background()
	if got, err := r.Get(ctx, 0, 0, ids(spans)); err == nil || len(got) != len(spans)-76 {
		t.Fatalf("damaged: %d spans, %v", len(got), err)
	}
	if err := os.WriteFile(sst[0], good, 0o440); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Get(ctx, 0, 0, ids(spans)); err == nil || len(got) != len(spans)-76 {
		t.Fatalf("before Verify the refusal stands: %d spans, %v", len(got), err)
	}
	if err := r.Verify(ctx); err != nil {
		t.Fatalf("restored shard: %v", err)
	}
	if got, err := r.Get(ctx, 0, 0, ids(spans)); err != nil || len(got) != len(spans) {
		t.Fatalf("restored: %d of %d spans, %v", len(got), len(spans), err)
	}
}

// TestMergeRehashesChangedHeads: the writer remembers the stamps of the
// head files it sealed (it hashed them for the manifest), so its merge
// does not hash them again; a head file changed after its seal (same
// size, later modification time) is hashed by the merge and refused, the
// window is not merged and its heads stay listed.
func TestMergeRehashesChangedHeads(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	defer w.Close()
	spans := bookinfo(t, 4)
	for _, part := range [][]span.Span{spans[:76], spans[76:]} {
		if err := w.Write(part...); err != nil {
			t.Fatal(err)
		}
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	heads := w.Manifest().Shards
	if len(heads) != 2 {
		t.Fatalf("%d shards, want 2 heads", len(heads))
	}
	nodeDir := filepath.Join(dir, "node-a")
	for _, h := range heads {
		if !w.opener.known(filepath.Join(nodeDir, h.Name), h.Files) {
			t.Errorf("head %s: the writer does not know the files it sealed", h.Name)
		}
	}
	// The second head's largest file: one byte changed, size kept, its
	// modification time a second later.
	var f FileSum
	for _, x := range heads[1].Files {
		if x.Size > f.Size {
			f = x
		}
	}
	p := filepath.Join(nodeDir, heads[1].Name, f.Name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, st.ModTime(), st.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	w.opt.Now = func() time.Time { return time.Unix(0, spans[len(spans)-1].StartNs).Add(time.Hour) }
	err = w.Maintain()
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("merge with a changed head: %v, want its checksum mismatch", err)
	}
	m := w.Manifest()
	if len(m.Shards) != 2 || m.Shards[0].Merged || m.Shards[1].Merged {
		t.Errorf("after the refused merge the manifest lists %+v, want the two heads", m.Shards)
	}
}
