//go:build linux

package ebpf

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"testing"
)

// A program freshly built by the installed toolchain: the offset of
// runtime.g.goid in its DWARF is the table's for its release, which must
// be listed.
func TestGoidOffsetMatchesDWARF(t *testing.T) {
	bin := buildPeer(t, "gohttp")
	rel := binRelease(t, bin)
	want, ok := goidOffsets[rel]
	if !ok {
		t.Fatalf("%s is not in goidOffsets: add its offset (docs/assembly.md \"Goid offsets\")", rel)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		t.Fatal(err)
	}
	got, err := dwarfGoidOffset(d)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("runtime.g.goid at %d in the DWARF of a %s binary, the table says %d", got, rel, want)
	}
}

// The table gives the offset of a binary without DWARF; a release not in
// the table is read from the DWARF when there is some, else refused.
func TestGoidOffsetSources(t *testing.T) {
	full := buildPeer(t, "gohttp")
	bare := buildPeer(t, "gohttp", "-ldflags=-w") // symbols kept, no DWARF
	rel := binRelease(t, full)
	want := goidOffsets[rel]
	for _, bin := range []string{full, bare} {
		if got, err := goidOffset(bin); err != nil || got != want {
			t.Errorf("%s (in the table): %d, %v; want %d", bin, got, err, want)
		}
	}
	withoutRelease(t, rel)
	if got, err := goidOffset(full); err != nil || got != want {
		t.Errorf("not in the table, with DWARF: %d, %v; want %d", got, err, want)
	}
	if got, err := goidOffset(bare); !errors.Is(err, errNoGoid) {
		t.Errorf("not in the table, no DWARF: %d, %v; want errNoGoid", got, err)
	}
}

// The table lists every release from go1.17 (the register ABI: the
// goroutine in R14) to its last one with no gap, at 8-byte aligned
// offsets past runtime.g's first fields (stack bounds and guards, _panic,
// _defer, m, the saved registers: over 128 bytes in every release).
func TestGoidOffsetTable(t *testing.T) {
	last := 0
	for rel := range goidOffsets {
		var minor int
		if _, err := fmt.Sscanf(rel, "go1.%d", &minor); err != nil || rel != fmt.Sprintf("go1.%d", minor) {
			t.Errorf("release %q is not go1.N", rel)
		}
		last = max(last, minor)
	}
	if last < 26 {
		t.Errorf("last release listed go1.%d, want at least go1.26", last)
	}
	for minor := 17; minor <= last; minor++ {
		rel := fmt.Sprintf("go1.%d", minor)
		off, ok := goidOffsets[rel]
		switch {
		case !ok:
			t.Errorf("%s missing", rel)
		case off%8 != 0 || off <= 128 || off > 256:
			t.Errorf("%s: goid at %d", rel, off)
		}
	}
	if _, ok := goidOffsets["go1.16"]; ok {
		t.Error("go1.16 listed: it predates the register ABI")
	}
}

func TestGoRelease(t *testing.T) {
	for in, want := range map[string]string{
		"go1.26.8":             "go1.26",
		"go1.26rc1":            "go1.26",
		"go1.22.0 X:rangefunc": "go1.22",
		"go1.9":                "go1.9",
		"devel +abc":           "devel",
	} {
		if got := goRelease(in); got != want {
			t.Errorf("goRelease(%q) = %q, want %q", in, got, want)
		}
	}
}

// binRelease is the Go release that built bin.
func binRelease(t *testing.T, bin string) string {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return goRelease(bi.GoVersion)
}

// withoutRelease removes rel from the table for the test's duration.
func withoutRelease(t *testing.T, rel string) {
	t.Helper()
	off, ok := goidOffsets[rel]
	delete(goidOffsets, rel)
	t.Cleanup(func() {
		if ok {
			goidOffsets[rel] = off
		}
	})
}
