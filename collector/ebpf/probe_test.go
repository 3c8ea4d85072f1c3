//go:build linux

package ebpf

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// loadedCapturePrograms lists the ids of loaded programs that carry the
// name of one of the capture's (the kernel keeps 15 bytes of it).
func loadedCapturePrograms(t *testing.T) map[ebpf.ProgramID]bool {
	t.Helper()
	spec, err := LoadSocket()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for name := range spec.Programs {
		names[name[:min(len(name), 15)]] = true
	}
	ids := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		id, err = ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		if info, err := p.Info(); err == nil && names[info.Name] {
			ids[id] = true
		}
		p.Close()
	}
}

// TestProbe: as root here every kind of program loads and attaches, and
// nothing of it is left loaded afterwards.
func TestProbe(t *testing.T) {
	testenv.RequireRoot(t)
	before := loadedCapturePrograms(t)
	r := Probe()
	if r.Load != nil || r.TracepointErr != nil || r.TpBTF != nil || r.Uprobe != nil || r.Uretprobe != nil || r.Ringbuf != nil {
		t.Fatalf("probe: %+v", r)
	}
	if r.Tracepoints != len(tracepoints) || r.TracepointsWanted != len(tracepoints) || r.LoadTime <= 0 {
		t.Errorf("probe attached %d of %d tracepoints (%d wanted), loaded in %v", r.Tracepoints, r.TracepointsWanted, len(tracepoints), r.LoadTime)
	}
	t.Logf("loaded in %v, %d tracepoints", r.LoadTime, r.Tracepoints)
	after := loadedCapturePrograms(t)
	for id := range after {
		if !before[id] {
			t.Errorf("program %d is still loaded after the probe", id)
		}
	}
}
