// Package procmaps reads the files a process maps from its memory map (the
// text of /proc/<pid>/maps): the collector finds there the libraries it
// attaches uprobes to (libssl: collector/tlslib; CPython's _queue and
// _asyncio modules: collector/ebpf).
package procmaps

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// File is a file a process maps.
type File struct {
	Path    string // as the process sees it (under its root)
	Deleted bool   // the file was deleted or replaced since it was mapped
}

// Files returns the files of a memory map (the text of /proc/<pid>/maps),
// each once, in the order of their first mapping; anonymous mappings and
// pseudo-files ([stack], [vdso]) are left out.
func Files(maps io.Reader) ([]File, error) {
	var out []File
	seen := map[string]bool{}
	sc := bufio.NewScanner(maps)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		f := File{Path: line[i:]}
		if p, ok := strings.CutSuffix(f.Path, " (deleted)"); ok {
			f = File{Path: p, Deleted: true}
		}
		if seen[f.Path] {
			continue
		}
		seen[f.Path] = true
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading a memory map: %w", err)
	}
	return out, nil
}

// Read returns the files the memory map at path maps (/proc/<pid>/maps).
func Read(path string) ([]File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening a memory map: %w", err)
	}
	defer f.Close()
	return Files(f)
}
