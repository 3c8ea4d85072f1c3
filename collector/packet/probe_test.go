//go:build linux

package packet

import (
	"os"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// sockets counts this process's open sockets.
func sockets(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// TestProbe: one ring and a fanout group of four open on lo and are
// closed again; a missing interface is named.
func TestProbe(t *testing.T) {
	testenv.RequireRoot(t)
	before := sockets(t)
	for _, n := range []int{1, 4} {
		if err := Probe("", "lo", Geometry{BlockSize: 64 << 10, Blocks: 2}, n); err != nil {
			t.Errorf("%d rings on lo: %v", n, err)
		}
	}
	if err := Probe("", "zt-no-such0", DefaultGeometry, 1); err == nil || !strings.Contains(err.Error(), "zt-no-such0") {
		t.Errorf("missing interface: %v", err)
	}
	if after := sockets(t); after != before {
		t.Errorf("%d sockets open before the probes, %d after", before, after)
	}
}
