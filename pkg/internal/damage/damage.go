// Package damage lists the ways a data directory gets damaged (truncated,
// overwritten, emptied, missing and foreign files) for the tests that check
// that readers survive them without writing anything.
package damage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Case is one damage, applied to a node directory and one of its shards.
type Case struct {
	Name string
	// Node is true when the damage hits the node's MANIFEST.json: the whole
	// node is unreadable, its error names the manifest. Otherwise the error
	// names the shard.
	Node bool
	// Served is true when the damage must not stop the shard from being read
	// (a foreign file the seal did not record).
	Served bool
	Apply  func(nodeDir, shard string) error
}

func shardFile(nodeDir, shard, glob string) (string, error) {
	m, err := filepath.Glob(filepath.Join(nodeDir, shard, glob))
	if err != nil || len(m) == 0 {
		return "", fmt.Errorf("no %s in shard %s", glob, shard)
	}
	sort.Strings(m)
	return m[0], nil
}

func onFile(glob string, f func(path string) error) func(string, string) error {
	return func(nodeDir, shard string) error {
		p, err := shardFile(nodeDir, shard, glob)
		if err != nil {
			return err
		}
		return f(p)
	}
}

func onManifest(f func(path string) error) func(string, string) error {
	return func(nodeDir, _ string) error { return f(filepath.Join(nodeDir, "MANIFEST.json")) }
}

// Truncate cuts a file to keep bytes (negative: half its size).
func Truncate(keep int64) func(string) error {
	return func(p string) error {
		if keep < 0 {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()/2)
		}
		return os.Truncate(p, keep)
	}
}

// Overwrite writes n bytes of 0xA5 at offset off (negative: from the end,
// clamped to the file).
func Overwrite(off int64, n int) func(string) error {
	return func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if off < 0 {
			off = max(0, st.Size()+off)
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte(strings.Repeat("\xa5", n)), off)
		return err
	}
}

// Middle overwrites 32 bytes in the middle of a file.
func Middle(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	return Overwrite(st.Size()/2, 32)(p)
}

// Cases lists every damage the readers must survive.
func Cases() []Case {
	return []Case{
		{Name: "sst cut to half", Apply: onFile("*.sst", Truncate(-1))},
		{Name: "sst last 64 bytes overwritten", Apply: onFile("*.sst", Overwrite(-64, 64))},
		{Name: "sst garbage in the middle", Apply: onFile("*.sst", Middle)},
		{Name: "sst empty", Apply: onFile("*.sst", Truncate(0))},
		{Name: "sst missing", Apply: onFile("*.sst", os.Remove)},
		{Name: "sst replaced by a link", Apply: onFile("*.sst", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("/etc/hostname", p)
		})},
		{Name: "vlog cut", Apply: onFile("*.vlog", Truncate(10))},
		{Name: "vlog overwritten", Apply: onFile("*.vlog", Overwrite(0, 20))},
		{Name: "badger MANIFEST cut to 10 bytes", Apply: onFile("MANIFEST", Truncate(10))},
		{Name: "badger MANIFEST garbage in the middle", Apply: onFile("MANIFEST", Middle)},
		{Name: "badger MANIFEST missing", Apply: onFile("MANIFEST", os.Remove)},
		{Name: "KEYREGISTRY overwritten", Apply: onFile("KEYREGISTRY", Overwrite(0, 28))},
		{Name: "KEYREGISTRY empty", Apply: onFile("KEYREGISTRY", Truncate(0))},
		{Name: "DISCARD garbage in the middle", Apply: onFile("DISCARD", Middle)},
		{Name: "shard directory missing", Apply: func(nodeDir, shard string) error {
			return os.RemoveAll(filepath.Join(nodeDir, shard))
		}},
		{Name: "foreign sst added", Served: true, Apply: func(nodeDir, shard string) error {
			return os.WriteFile(filepath.Join(nodeDir, shard, "000099.sst"), []byte("not a table"), 0o444)
		}},
		{Name: "MANIFEST.json cut", Node: true, Apply: onManifest(Truncate(-1))},
		{Name: "MANIFEST.json garbage in the middle", Node: true, Apply: onManifest(Middle)},
		{Name: "MANIFEST.json empty", Node: true, Apply: onManifest(Truncate(0))},
	}
}

// Snapshot maps every path under dir to its mode, link target or SHA-256,
// to compare a directory before and after a reader ran.
func Snapshot(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			v += " -> " + t
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			v += fmt.Sprintf(" %d %s", len(b), hex.EncodeToString(s[:]))
		}
		out[rel] = v
		return nil
	})
	return out, err
}

// Diff describes how two snapshots differ ("" when equal).
func Diff(before, after map[string]string) string {
	var d []string
	for p, v := range before {
		if w, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		} else if w != v {
			d = append(d, fmt.Sprintf("changed %s: %s → %s", p, v, w))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, "added "+p)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// Copy copies the tree at src to dst, keeping modes.
func Copy(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.MkdirAll(t, 0o700); err != nil {
				return err
			}
			return os.Chmod(t, info.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(t, b, 0o600); err != nil {
			return err
		}
		return os.Chmod(t, info.Mode().Perm())
	})
}
