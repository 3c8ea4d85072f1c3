package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// CaptureStatsName is the file in a node directory where the collector
// records what its captures saw and lost: events the eBPF ring buffer
// dropped and frames the kernel dropped per packet interface. It is
// rewritten (replaced whole) every few seconds while the collector runs, so
// `zerotrace store stats` and the plugin's health check show loss next to
// the spans. It is not part of any shard and is not uploaded.
const CaptureStatsName = "CAPTURE.json"

// maxCaptureStats bounds what ReadCaptureStats reads: the file is
// untrusted input (ADR 0002).
const maxCaptureStats = 1 << 20

// CaptureStats are a collector's capture counters since it started.
type CaptureStats struct {
	UpdatedNs  int64            `json:"updated_ns"` // wall clock of the last update
	StartedNs  int64            `json:"started_ns"` // when the collector started (the counters' origin)
	EBPF       *EBPFStats       `json:"ebpf,omitempty"`
	Interfaces []InterfaceStats `json:"interfaces,omitempty"`
	// Store is the store writer's disk accounting (spans dropped for lack
	// of disk space among them); WriteCaptureStats fills it in.
	Store *StoreStats `json:"store,omitempty"`
}

// EBPFStats are the eBPF capture's kernel-side counters.
type EBPFStats struct {
	Events       uint64 `json:"events"`        // records sent to the collector
	RingbufDrops uint64 `json:"ringbuf_drops"` // records lost: the ring buffer was full
}

// InterfaceStats are one packet interface's counters (PACKET_STATISTICS).
type InterfaceStats struct {
	Name    string `json:"name"` // netns:interface
	Packets uint64 `json:"packets"`
	Drops   uint64 `json:"drops"` // frames the kernel dropped (ring full)
}

// Drops is the sum of ring-buffer and packet drops.
func (s CaptureStats) Drops() (ringbuf, packets uint64) {
	if s.EBPF != nil {
		ringbuf = s.EBPF.RingbufDrops
	}
	for _, i := range s.Interfaces {
		packets += i.Drops
	}
	return ringbuf, packets
}

// WriteCaptureStats replaces the node directory's CaptureStatsName (a
// temporary file renamed over it, readable by the data group), with the
// writer's own StoreStats.
func (w *Writer) WriteCaptureStats(s CaptureStats) error {
	st := w.Stats()
	s.Store = &st
	s.Interfaces = slices.Clone(s.Interfaces)
	slices.SortFunc(s.Interfaces, func(a, b InterfaceStats) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding capture stats: %w", err)
	}
	// Padded with spaces to whole 4 KiB blocks: on a full disk the next
	// record is written over this one (rewriteCaptureStats).
	pad := (len(b) + 1 + 4095) / 4096 * 4096
	b = append(append(b, bytes.Repeat([]byte{' '}, pad-len(b)-1)...), '\n')
	tmp, err := os.CreateTemp(w.nodeDir, ".capture-*.tmp")
	if err != nil {
		return fmt.Errorf("writing capture stats: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		if IsNoSpace(err) {
			return w.rewriteCaptureStats(b, err)
		}
		return fmt.Errorf("writing capture stats: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing capture stats: %w", err)
	}
	if err := w.setMode(tmp.Name(), sealedFileMode); err != nil {
		return fmt.Errorf("writing capture stats: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(w.nodeDir, CaptureStatsName)); err != nil {
		return fmt.Errorf("writing capture stats: %w", err)
	}
	return nil
}

// rewriteCaptureStats, on a full disk, writes b over the record in place
// (its blocks are already allocated) when b is no longer; else it returns
// the error that sent it here. A reader at that moment may read a mixed
// record: a parse error for one look.
func (w *Writer) rewriteCaptureStats(b []byte, cause error) error {
	path := filepath.Join(w.nodeDir, CaptureStatsName)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < int64(len(b)) {
		return fmt.Errorf("writing capture stats: %w", cause)
	}
	b = append(append(b[:len(b)-1], bytes.Repeat([]byte{' '}, int(fi.Size())-len(b))...), '\n')
	if err := os.Chmod(path, 0o640); err != nil {
		return fmt.Errorf("writing capture stats: %w", err)
	}
	defer w.setMode(path, sealedFileMode)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("writing capture stats: %w", err)
	}
	_, err = f.WriteAt(b, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing capture stats in place: %w", err)
	}
	return nil
}

// ReadCaptureStats reads a node directory's CaptureStatsName; ok is false
// when there is none (a collector from before it, or the data came from a
// bucket). A damaged file gives an error, never a panic.
func ReadCaptureStats(nodeDir string) (s CaptureStats, ok bool, err error) {
	f, err := os.Open(filepath.Join(nodeDir, CaptureStatsName))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("reading capture stats: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCaptureStats+1))
	if err != nil {
		return s, false, fmt.Errorf("reading capture stats: %w", err)
	}
	if len(b) > maxCaptureStats {
		return s, false, fmt.Errorf("reading capture stats: larger than %d bytes", maxCaptureStats)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return CaptureStats{}, false, fmt.Errorf("reading capture stats: %w", err)
	}
	return s, true, nil
}
