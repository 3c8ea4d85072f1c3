package tlslib

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/zerotrace/zerotrace/collector/procmaps"
)

// Libraries returns the libssl files (libssl.so, libssl.so.N…) in a
// process's memory map (the text of /proc/<pid>/maps), each once.
func Libraries(maps io.Reader) ([]procmaps.File, error) {
	files, err := procmaps.Files(maps)
	if err != nil {
		return nil, err
	}
	var out []procmaps.File
	for _, f := range files {
		if IsLibSSL(f.Path) {
			out = append(out, f)
		}
	}
	return out, nil
}

// IsLibSSL reports whether path names a shared libssl ("libssl.so",
// "libssl.so.3", "libssl.so.1.1").
func IsLibSSL(path string) bool {
	base := filepath.Base(path)
	return base == "libssl.so" || strings.HasPrefix(base, "libssl.so.")
}
