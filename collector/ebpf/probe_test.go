//go:build linux

package ebpf

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestProbe: as root here every kind of program loads and attaches, and
// nothing of it is left loaded afterwards.
func TestProbe(t *testing.T) {
	testenv.RequireRoot(t)
	r := Probe()
	if r.Load != nil || r.TracepointErr != nil || r.TpBTF != nil || r.Uprobe != nil || r.Uretprobe != nil || r.Ringbuf != nil {
		t.Fatalf("probe: %+v", r)
	}
	// 27 syscall tracepoints and the 7 event-loop waits (attached by Start
	// only when some process's TLS is not read): Probe tries them all.
	if r.Tracepoints != 34 || r.TracepointsWanted != 34 || r.LoadTime <= 0 {
		t.Errorf("probe attached %d of %d tracepoints (34 wanted), loaded in %v", r.Tracepoints, r.TracepointsWanted, r.LoadTime)
	}
	t.Logf("loaded in %v, %d tracepoints, %d programs", r.LoadTime, r.Tracepoints, len(r.Programs))
	spec, err := LoadSocket()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Programs) != len(spec.Programs) {
		t.Errorf("probe loaded %d programs, the capture has %d", len(r.Programs), len(spec.Programs))
	}
	// Its own programs, by id: other tests' collectors load the same
	// programs meanwhile (go test runs packages in parallel).
	for _, id := range r.Programs {
		p, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			p.Close()
		}
		t.Errorf("program %d is still loaded after the probe (%v)", id, err)
	}
}
