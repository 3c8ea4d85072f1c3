package tlslib

import (
	"bufio"
	"io"
	"path/filepath"
	"strings"
)

// Mapped is a file a process maps that may carry a TLS library.
type Mapped struct {
	Path    string // as the process sees it (under its root)
	Deleted bool   // the file was deleted or replaced since it was mapped
}

// Libraries returns the libssl files (libssl.so, libssl.so.N…) in a
// process's memory map (the text of /proc/<pid>/maps), each once.
func Libraries(maps io.Reader) ([]Mapped, error) {
	var out []Mapped
	seen := map[string]bool{}
	sc := bufio.NewScanner(maps)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := line[i:]
		m := Mapped{Path: path}
		if p, ok := strings.CutSuffix(path, " (deleted)"); ok {
			m = Mapped{Path: p, Deleted: true}
		}
		if !IsLibSSL(m.Path) || seen[m.Path] {
			continue
		}
		seen[m.Path] = true
		out = append(out, m)
	}
	return out, sc.Err()
}

// IsLibSSL reports whether path names a shared libssl ("libssl.so",
// "libssl.so.3", "libssl.so.1.1").
func IsLibSSL(path string) bool {
	base := filepath.Base(path)
	return base == "libssl.so" || strings.HasPrefix(base, "libssl.so.")
}
