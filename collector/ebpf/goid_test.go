//go:build linux

package ebpf

import (
	"os"
	goruntime "runtime"
	"testing"
)

// The test binary's own runtime.g, from its DWARF, agrees with the table
// entry of the Go release that built it (when listed).
func TestGoidOffsetDWARF(t *testing.T) {
	off, err := goidOffset(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if off == 0 {
		t.Fatal("offset 0")
	}
	if want, ok := goidOffsets[goRelease(goruntime.Version())]; ok && off != want {
		t.Fatalf("goid at %d in DWARF, table says %d", off, want)
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
