//go:build linux

package ebpf

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"strings"
)

// goidOffsets is the offset of runtime.g's goid field by Go release
// (major.minor, amd64), for executables without DWARF. Only releases whose
// offset was read from a binary's DWARF are listed: a wrong offset would
// key a goroutine by another field, so an unlisted release is not tracked.
var goidOffsets = map[string]uint16{
	"go1.26": 152, // go1.26.8: collector/testpeers/gohttp's DWARF
}

// goidOffset returns the offset of the goid field in the runtime.g of the
// Go executable at path (bpf/socket/goroutine.h goroutine_key): from its
// DWARF, else from its Go release (goidOffsets).
func goidOffset(path string) (uint16, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("opening executable: %w", err)
	}
	defer f.Close()
	if d, err := f.DWARF(); err == nil {
		off, err := dwarfGoidOffset(d)
		if err == nil {
			return off, nil
		}
		if !errors.Is(err, errNoGoid) {
			return 0, err
		}
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading build info: %w", err)
	}
	rel := goRelease(bi.GoVersion)
	off, ok := goidOffsets[rel]
	if !ok {
		return 0, fmt.Errorf("no DWARF and no known runtime.g.goid offset for %s", bi.GoVersion)
	}
	return off, nil
}

var errNoGoid = errors.New("no runtime.g.goid in DWARF")

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
			return 0, errNoGoid
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
			return 0, errNoGoid
		}
		if m.Tag != dwarf.TagMember || m.Val(dwarf.AttrName) != "goid" {
			continue
		}
		off, ok := m.Val(dwarf.AttrDataMemberLoc).(int64)
		if !ok || off <= 0 || off > 0xffff {
			return 0, fmt.Errorf("runtime.g.goid at %v", m.Val(dwarf.AttrDataMemberLoc))
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
