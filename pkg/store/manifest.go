package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// ManifestName is the file, in each node directory, that lists the live
// shards. Readers open only the shards it lists.
const ManifestName = "MANIFEST.json"

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
		if s.Name == "" || s.Name != filepath.Base(s.Name) || s.Name == "." || s.Name == ".." {
			return nil, fmt.Errorf("parsing manifest: bad shard name %q", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("parsing manifest: shard %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.MaxNs < s.MinNs || s.Spans < 0 || s.Bytes < 0 {
			return nil, fmt.Errorf("parsing manifest: shard %q has an inconsistent range or count", s.Name)
		}
		files := map[string]bool{}
		for _, f := range s.Files {
			if f.Name == "" || f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." || files[f.Name] {
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

func readManifest(nodeDir string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(nodeDir, ManifestName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%s: more than %d bytes", filepath.Join(nodeDir, ManifestName), maxManifestBytes)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(nodeDir, ManifestName), err)
	}
	return m, nil
}

// writeManifest replaces the manifest atomically: write a temporary file,
// fsync it, rename it over the old one, fsync the directory.
func writeManifest(nodeDir string, m *Manifest) error {
	sort.Slice(m.Shards, func(i, j int) bool { return m.Shards[i].MinNs < m.Shards[j].MinNs })
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
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
