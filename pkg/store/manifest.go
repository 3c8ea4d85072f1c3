package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ManifestName is the file, in each node directory, that lists the live
// shards. Readers open only the shards it lists.
const ManifestName = "MANIFEST.json"

// DefaultDataDir is where the collector writes and the provisioning points.
const DefaultDataDir = "/var/lib/zerotrace"

const manifestVersion = 1

// Manifest lists the sealed shards of one node.
type Manifest struct {
	Version int          `json:"version"`
	Node    string       `json:"node"`
	Shards  []ShardEntry `json:"shards"`
}

// ShardEntry is one sealed shard.
type ShardEntry struct {
	Name    string    `json:"name"` // directory name under the node directory
	MinNs   int64     `json:"min_ns"`
	MaxNs   int64     `json:"max_ns"` // latest span start
	Spans   int64     `json:"spans"`
	Batches int64     `json:"batches"`
	Bytes   int64     `json:"bytes"`
	Merged  bool      `json:"merged,omitempty"`
	Sources []string  `json:"sources,omitempty"` // shards a merge replaced
	Files   []FileSum `json:"files,omitempty"`   // every file at seal time; readers verify them
	// SpanIDs are ranges holding every span id of the shard: one per id
	// prefix (the top 16 bits, the collector's: span.IDGenerator counts up
	// below it), at most maxIDRanges. Get opens only the shards with a
	// range holding an id it looks for. Empty: unknown (shards sealed
	// before ranges were recorded), every shard is searched.
	SpanIDs []IDRange `json:"span_ids,omitempty"`
}

// IDRange is an inclusive range of span ids, [first, last]. In JSON it is
// the string "first-last" in 16 hex digits each: tools that read JSON
// numbers as doubles (jq, JavaScript) would round 64-bit ids, and a rounded
// range would hide spans from Get.
type IDRange [2]uint64

// MarshalText writes "first-last" in hex.
func (r IDRange) MarshalText() ([]byte, error) {
	return fmt.Appendf(nil, "%016x-%016x", r[0], r[1]), nil
}

// UnmarshalText reads "first-last", exactly 16 hex digits each, first ≤
// last.
func (r *IDRange) UnmarshalText(b []byte) error {
	if len(b) != 33 || b[16] != '-' {
		return fmt.Errorf("span id range %q is not 16 hex digits, '-', 16 hex digits", b)
	}
	for i, part := range [][]byte{b[:16], b[17:]} {
		v, err := strconv.ParseUint(string(part), 16, 64)
		if err != nil {
			return fmt.Errorf("span id range %q: %w", b, err)
		}
		r[i] = v
	}
	if r[1] < r[0] {
		return fmt.Errorf("span id range %q is inverted", b)
	}
	return nil
}

// maxIDRanges bounds a shard's id ranges; beyond it they are joined into
// one.
const maxIDRanges = 16

// addID widens the range of r's id prefix in rs by r, or adds r; beyond
// maxIDRanges prefixes it joins every range into one.
func addID(rs []IDRange, r IDRange) []IDRange {
	for i := range rs {
		if rs[i][0]>>48 == r[0]>>48 && rs[i][1]>>48 == r[1]>>48 {
			rs[i] = IDRange{min(rs[i][0], r[0]), max(rs[i][1], r[1])}
			return rs
		}
	}
	rs = append(rs, r)
	if len(rs) > maxIDRanges {
		all := rs[0]
		for _, x := range rs[1:] {
			all = IDRange{min(all[0], x[0]), max(all[1], x[1])}
		}
		rs = []IDRange{all}
	}
	return rs
}

// mayHoldID says whether the shard may hold a span with this id.
func (e *ShardEntry) mayHoldID(id uint64) bool {
	for _, r := range e.SpanIDs {
		if id >= r[0] && id <= r[1] {
			return true
		}
	}
	return len(e.SpanIDs) == 0
}

// badEntryName reports whether a shard's or file's name from a manifest is
// no plain name in one directory: empty, "." or "..", or holding a path
// separator of any system the plugin runs on ('/' and '\': on Windows a
// backslash separates, and filepath.Base on Linux keeps it).
func badEntryName(n string) bool {
	return n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`)
}

// ParseManifest decodes and checks a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("parsing manifest: version %d, want %d", m.Version, manifestVersion)
	}
	seen := map[string]bool{}
	for _, s := range m.Shards {
		if badEntryName(s.Name) {
			return nil, fmt.Errorf("parsing manifest: bad shard name %q", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("parsing manifest: shard %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.MaxNs < s.MinNs || s.Spans < 0 || s.Bytes < 0 {
			return nil, fmt.Errorf("parsing manifest: shard %q has an inconsistent range or count", s.Name)
		}
		if len(s.SpanIDs) > maxIDRanges {
			return nil, fmt.Errorf("parsing manifest: shard %q has %d span id ranges, at most %d", s.Name, len(s.SpanIDs), maxIDRanges)
		}
		files := map[string]bool{}
		for _, f := range s.Files {
			if badEntryName(f.Name) || files[f.Name] {
				return nil, fmt.Errorf("parsing manifest: shard %q: bad or repeated file name %q", s.Name, f.Name)
			}
			files[f.Name] = true
			if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size || f.Size < 0 {
				return nil, fmt.Errorf("parsing manifest: shard %q: file %q: bad size or sha256", s.Name, f.Name)
			}
		}
	}
	return &m, nil
}

// maxManifestBytes bounds what a reader reads of a manifest: an entry is
// about 150 bytes, so this is some hundred thousand shards.
const maxManifestBytes = 16 << 20

// manifestHint is what to do about a damaged manifest: without it the
// node's shards are not read, and its collector does not start.
const manifestHint = "restore it from a backup: the node's shards are not read without it"

// readManifest reads a node's manifest; errors name the file and what to
// do.
func readManifest(nodeDir string) (*Manifest, error) {
	path := filepath.Join(nodeDir, ManifestName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("%w (read it as root or as a member of the collector's --data-group)", err)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%s: more than %d bytes (%s)", path, maxManifestBytes, manifestHint)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%s)", path, err, manifestHint)
	}
	return m, nil
}

// writeManifest replaces the manifest atomically (replaceManifest),
// encoding every entry (manifestEncoder).
func writeManifest(nodeDir string, m *Manifest) error {
	var enc manifestEncoder
	_, err := enc.write(nodeDir, m)
	return err
}

// write replaces the manifest atomically: write a temporary file, fsync
// it, rename it over the old one, fsync the directory. It returns the
// manifest's size.
func (c *manifestEncoder) write(nodeDir string, m *Manifest) (int, error) {
	b, err := c.encode(m)
	if err != nil {
		return 0, fmt.Errorf("writing manifest: %w", err)
	}
	return len(b), replaceManifest(nodeDir, b)
}

func replaceManifest(nodeDir string, b []byte) error {
	tmp := filepath.Join(nodeDir, ManifestName+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	// Readable by whoever may enter the node directory (its mode and group
	// decide), whatever the umask.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(nodeDir, ManifestName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing manifest: %w", err)
	}
	if d, err := os.Open(nodeDir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += diskUsage(info)
			}
		}
		return nil
	})
	return n
}
