package bucket

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/summary"
)

// Object names, relative to the prefix.
const (
	manifestsDir = "manifests/"
	shardsDir    = "shards/"
)

// ManifestKey is the object of a node's bucket manifest.
func ManifestKey(prefix, node string) string { return prefix + manifestsDir + node + ".json" }

// ShardPrefix is the common prefix of a shard's objects (ends with '/').
func ShardPrefix(prefix, node, shard string) string {
	return prefix + shardsDir + node + "/" + shard + "/"
}

// NodePrefix is the common prefix of all of a node's shard objects.
func NodePrefix(prefix, node string) string { return prefix + shardsDir + node + "/" }

const manifestVersion = 1

// Manifest is a node's bucket manifest: the shards whose objects are all
// uploaded, and the shards waiting for their objects to be deleted.
type Manifest struct {
	Version   int       `json:"version"`
	Node      string    `json:"node"`
	UpdatedNs int64     `json:"updated_ns"`
	Shards    []Shard   `json:"shards"`
	Deleting  []Garbage `json:"deleting,omitempty"`
}

// Shard is one uploaded shard.
type Shard struct {
	Name       string   `json:"name"`
	MinNs      int64    `json:"min_ns"`
	MaxNs      int64    `json:"max_ns"`
	Spans      int64    `json:"spans"`
	Batches    int64    `json:"batches"`
	Merged     bool     `json:"merged,omitempty"`
	Sources    []string `json:"sources,omitempty"`
	UploadedNs int64    `json:"uploaded_ns"`
	Files      []File   `json:"files"`
	// SpanIDs are the shard's span id ranges (store.ShardEntry.SpanIDs):
	// a reader asks only the shards whose ranges hold an id it looks for.
	// Empty: unknown (uploaded before ranges were listed).
	SpanIDs []store.IDRange `json:"span_ids,omitempty"`
	// Summary is the shard's summary object (pkg/summary), beside its
	// files under the shard's prefix. Absent: uploaded before summaries;
	// readers download the shard to find out what it holds.
	Summary *File `json:"summary,omitempty"`
}

// File is one object of a shard.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Bytes is the shard's size in the bucket.
func (s *Shard) Bytes() int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Size
	}
	return n
}

// Garbage is a shard left out of the manifest whose objects are deleted
// once AfterNs has passed.
type Garbage struct {
	Name    string   `json:"name"`
	Files   []string `json:"files"`
	AfterNs int64    `json:"after_ns"`
}

// Limits on what ParseManifest accepts.
const (
	MaxManifestBytes = 64 << 20
	maxShards        = 200000
	maxFiles         = 10000
	maxFileSize      = 1 << 40
	maxIDRanges      = 64
)

var errManifest = errors.New("bad bucket manifest")

// validName is a file or directory name that cannot leave its parent.
func validName(s string) bool {
	return s != "" && len(s) <= 255 && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00") && path.Base(s) == s
}

// ParseManifest decodes and checks a bucket manifest, which is untrusted:
// names must be plain file names (no path can leave the cache), sizes and
// ranges consistent, sums 64 hex digits, nothing listed twice.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errManifest, len(b), MaxManifestBytes)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errManifest, err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errManifest, m.Version, manifestVersion)
	}
	if !validName(m.Node) {
		return nil, fmt.Errorf("%w: node name %q", errManifest, clip(m.Node))
	}
	if len(m.Shards) > maxShards || len(m.Deleting) > maxShards {
		return nil, fmt.Errorf("%w: %d shards", errManifest, len(m.Shards)+len(m.Deleting))
	}
	seen := map[string]bool{}
	for i, s := range m.Shards {
		if !validName(s.Name) {
			return nil, fmt.Errorf("%w: shard %d: name %q", errManifest, i, clip(s.Name))
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: shard %q listed twice", errManifest, s.Name)
		}
		seen[s.Name] = true
		if s.MaxNs < s.MinNs || s.Spans < 0 || s.Batches < 0 {
			return nil, fmt.Errorf("%w: shard %q: inconsistent range or counts", errManifest, s.Name)
		}
		if len(s.Files) == 0 || len(s.Files) > maxFiles {
			return nil, fmt.Errorf("%w: shard %q: %d files", errManifest, s.Name, len(s.Files))
		}
		files := map[string]bool{}
		for _, f := range s.Files {
			if files[f.Name] {
				return nil, fmt.Errorf("%w: shard %q: file name %q repeated", errManifest, s.Name, clip(f.Name))
			}
			files[f.Name] = true
			if err := checkFile(f, maxFileSize); err != nil {
				return nil, fmt.Errorf("%w: shard %q: %v", errManifest, s.Name, err)
			}
		}
		if len(s.SpanIDs) > maxIDRanges {
			return nil, fmt.Errorf("%w: shard %q: %d span id ranges, at most %d", errManifest, s.Name, len(s.SpanIDs), maxIDRanges)
		}
		if f := s.Summary; f != nil {
			if files[f.Name] {
				return nil, fmt.Errorf("%w: shard %q: summary named like a shard file", errManifest, s.Name)
			}
			if err := checkFile(*f, summary.MaxBytes); err != nil {
				return nil, fmt.Errorf("%w: shard %q: summary: %v", errManifest, s.Name, err)
			}
		}
	}
	for i, g := range m.Deleting {
		if !validName(g.Name) {
			return nil, fmt.Errorf("%w: deleting %d: name %q", errManifest, i, clip(g.Name))
		}
		for _, f := range g.Files {
			if !validName(f) {
				return nil, fmt.Errorf("%w: deleting %q: file name %q", errManifest, g.Name, clip(f))
			}
		}
	}
	return &m, nil
}

// checkFile checks one listed object: a plain name, a size within limit,
// a sum of 64 hex digits.
func checkFile(f File, limit int64) error {
	if !validName(f.Name) {
		return fmt.Errorf("file name %q", clip(f.Name))
	}
	if f.Size < 0 || f.Size > limit {
		return fmt.Errorf("file %q of %d bytes", f.Name, f.Size)
	}
	if len(f.SHA256) != 64 {
		return fmt.Errorf("file %q: sha256 of %d characters", f.Name, len(f.SHA256))
	}
	if _, err := hex.DecodeString(f.SHA256); err != nil {
		return fmt.Errorf("file %q: sha256 not hex", f.Name)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
