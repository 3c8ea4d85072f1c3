package store

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCaptureStats: what the writer records is read back exactly (interfaces
// sorted) with the writer's own store counters, the file is replaced whole
// and read-only, a node directory without it reads as absent, and damaged
// or oversized files give errors.
func TestCaptureStats(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(WriterOptions{Dir: dir, Node: "n1", NoBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	nodeDir := filepath.Join(dir, "n1")
	if _, ok, err := ReadCaptureStats(nodeDir); ok || err != nil {
		t.Fatalf("before any write: ok=%v err=%v, want absent", ok, err)
	}
	if err := w.Write(bookinfo(t, 1)...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	in := CaptureStats{UpdatedNs: 2000, StartedNs: 1000, EBPF: &EBPFStats{Events: 500, RingbufDrops: 7},
		Interfaces: []InterfaceStats{{Name: "node1:veth2", Packets: 10, Drops: 3}, {Name: "node1:underlay", Packets: 20, Drops: 0}}}
	for i := range 2 { // the second write replaces the first
		in.EBPF.Events += uint64(i)
		if err := w.WriteCaptureStats(in); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := ReadCaptureStats(nodeDir)
	if err != nil || !ok {
		t.Fatalf("ReadCaptureStats: ok=%v err=%v", ok, err)
	}
	want := CaptureStats{UpdatedNs: 2000, StartedNs: 1000, EBPF: &EBPFStats{Events: 501, RingbufDrops: 7},
		Interfaces: []InterfaceStats{{Name: "node1:underlay", Packets: 20}, {Name: "node1:veth2", Packets: 10, Drops: 3}}}
	if st := got.Store; st == nil || st.Spans != 38 || st.DroppedDisk != 0 || st.UsedBytes <= 0 || st.FSBytes <= 0 || st.FreeBytes <= 0 {
		t.Fatalf("store stats %+v, want 38 spans written, none dropped, and the disk's figures", st)
	}
	got.Store = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v, want %+v", got, want)
	}
	if rb, pk := got.Drops(); rb != 7 || pk != 3 {
		t.Errorf("Drops() = %d, %d; want 7, 3", rb, pk)
	}
	st, err := os.Stat(filepath.Join(nodeDir, CaptureStatsName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != sealedFileMode {
		t.Errorf("mode %v, want %v", st.Mode().Perm(), os.FileMode(sealedFileMode))
	}
	ents, _ := os.ReadDir(nodeDir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}

	for name, content := range map[string]string{
		"truncated":  `{"updated_ns": 1, "ebpf": {"events": `,
		"not json":   "\x00\x01garbage",
		"wrong type": `{"interfaces": "eth0"}`,
		"oversized":  `{"interfaces": [` + strings.Repeat(`{"name": "x", "packets": 1, "drops": 1},`, 30000) + `{}]}`,
	} {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, CaptureStatsName), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := ReadCaptureStats(d); err == nil || ok {
			t.Errorf("%s: ok=%v err=%v, want an error", name, ok, err)
		}
	}
}
