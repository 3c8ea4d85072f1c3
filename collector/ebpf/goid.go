//go:build linux

package ebpf

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"strings"
)

// goidOffsets is the offset of runtime.g's goid field by Go release
// (major.minor, amd64), read from the DWARF of a program built by each
// release's toolchain (docs/assembly.md "Goid offsets"). Only releases
// whose offset was read are listed: a wrong offset would key a goroutine
// by another field, so an unlisted release is tracked only when its binary
// has DWARF.
var goidOffsets = map[string]uint16{
	"go1.17": 152, // go1.17.1, go1.17.13
	"go1.18": 152, // go1.18.10
	"go1.19": 152, // go1.19.13
	"go1.20": 152, // go1.20.14
	"go1.21": 152, // go1.21.13
	"go1.22": 152, // go1.22.12
	"go1.23": 160, // go1.23.12: g.syscallbp added before goid
	"go1.24": 160, // go1.24.0, go1.24.13
	"go1.25": 152, // go1.25.14: gobuf.ret removed (g.sched, before goid)
	"go1.26": 152, // go1.26.8
	"go1.27": 152, // go1.27.0, go1.27.4
}

// errNoGoid: neither the table nor the executable's DWARF gives the offset.
var errNoGoid = errors.New("runtime.g.goid's offset not known")

// goidOffset returns the offset of the goid field in the runtime.g of the
// Go executable at path (bpf/socket/goroutine.h goroutine_key): from the
// table by its Go release (the build information, a few KB read), else
// from its DWARF (decompressing .debug_info: up to seconds and hundreds of
// MB for a large binary, so only for a release not in the table).
func goidOffset(path string) (uint16, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("opening executable: %w", err)
	}
	defer f.Close()
	bi, err := buildinfo.Read(f)
	if err != nil {
		return 0, fmt.Errorf("reading build info: %w", err)
	}
	if off, ok := goidOffsets[goRelease(bi.GoVersion)]; ok {
		return off, nil
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return 0, fmt.Errorf("reading ELF: %w", err)
	}
	d, err := ef.DWARF()
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not in the table of checked releases and the binary has no DWARF (%v)", errNoGoid, bi.GoVersion, err)
	}
	off, err := dwarfGoidOffset(d)
	if err != nil {
		return 0, fmt.Errorf("%s is not in the table of checked releases: %w", bi.GoVersion, err)
	}
	return off, nil
}

// dwarfGoidOffset finds runtime.g's goid member in d; only the runtime's
// compile unit is read.
func dwarfGoidOffset(d *dwarf.Data) (uint16, error) {
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return 0, fmt.Errorf("reading DWARF: %w", err)
		}
		if e == nil {
			return 0, fmt.Errorf("%w: no runtime.g.goid in DWARF", errNoGoid)
		}
		switch {
		case e.Tag == dwarf.TagCompileUnit:
			if e.Val(dwarf.AttrName) != "runtime" {
				r.SkipChildren()
			}
		case e.Tag == dwarf.TagStructType && e.Val(dwarf.AttrName) == "runtime.g":
			return goidMember(r)
		case e.Children:
			r.SkipChildren()
		}
	}
}

// goidMember reads the members of the struct r is in for goid's offset.
func goidMember(r *dwarf.Reader) (uint16, error) {
	for {
		m, err := r.Next()
		if err != nil {
			return 0, fmt.Errorf("reading DWARF: %w", err)
		}
		if m == nil || m.Tag == 0 {
			return 0, fmt.Errorf("%w: runtime.g has no goid in DWARF", errNoGoid)
		}
		if m.Tag != dwarf.TagMember || m.Val(dwarf.AttrName) != "goid" {
			continue
		}
		off, ok := m.Val(dwarf.AttrDataMemberLoc).(int64)
		if !ok || off <= 0 || off > 0xffff {
			return 0, fmt.Errorf("%w: runtime.g.goid at %v in DWARF", errNoGoid, m.Val(dwarf.AttrDataMemberLoc))
		}
		return uint16(off), nil
	}
}

// goRelease is a Go version's release: "go1.26.8" and "go1.26rc1" give
// "go1.26".
func goRelease(v string) string {
	v, _, _ = strings.Cut(v, " ") // "go1.26.8 X:..." experiments
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return parts[0] + "." + minor
}
