package export

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The checkpoint records what the backend acknowledged: an append-only log
// of records, each
//
//	u32 payload length | u32 CRC-32C of the payload | payload
//
// with payload
//
//	16-byte trace id | uvarint n | n × (u64 span id, i64 start ns)
//
// A record is appended (and synced) after the backend accepted a batch and
// before the spans count as exported; a torn last record (the process was
// killed while writing it) is cut off when the log is opened, and its spans
// are sent again under the same ids. Entries of spans that started before
// the window are dropped by compaction, which rewrites the log into a new
// file and renames it over the old one.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxRecord bounds one record (a batch of spans).
const maxRecord = 64 << 20

// done is one exported span as the checkpoint knows it.
type done struct {
	traceID [16]byte
	startNs int64
}

type checkpoint struct {
	path   string
	f      *os.File
	size   int64
	live   int // entries written since the last compaction (roughly: live + dead)
	buf    []byte
	noSync bool
}

// openCheckpoint reads the log at path (missing: empty) into spans and
// opens it for appending; a torn tail is truncated.
func openCheckpoint(path string, spans map[uint64]done) (*checkpoint, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	good, n, err := readRecords(f, spans)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("checkpoint: cutting a torn record: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &checkpoint{path: path, f: f, size: good, live: n}, nil
}

// readRecords reads records until the end or the first torn or damaged one,
// returning the offset after the last good record.
func readRecords(f *os.File, spans map[uint64]done) (good int64, entries int, err error) {
	r := bufio.NewReader(f)
	var hdr [8]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return good, entries, nil // end, or a torn header
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if n > maxRecord || n < 17 {
			return good, entries, nil
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return good, entries, nil
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			return good, entries, nil
		}
		var d done
		copy(d.traceID[:], payload[:16])
		p := payload[16:]
		cnt, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) != cnt*16 {
			return good, entries, nil
		}
		p = p[k:]
		for i := uint64(0); i < cnt; i++ {
			d.startNs = int64(binary.LittleEndian.Uint64(p[8:16]))
			spans[binary.LittleEndian.Uint64(p[:8])] = d
			p = p[16:]
		}
		entries += int(cnt)
		good += 8 + int64(n)
	}
}

// encode appends one record.
func encodeRecord(b []byte, traceID [16]byte, ids []uint64, starts []int64) []byte {
	at := len(b)
	b = append(b, make([]byte, 8)...)
	b = append(b, traceID[:]...)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for i, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint64(b, uint64(starts[i]))
	}
	payload := b[at+8:]
	binary.LittleEndian.PutUint32(b[at:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[at+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// record is one trace's spans of a batch.
type record struct {
	traceID [16]byte
	ids     []uint64
	starts  []int64
}

// append writes the records of one acknowledged batch and syncs.
func (c *checkpoint) append(recs []record) error {
	c.buf = c.buf[:0]
	for _, r := range recs {
		c.buf = encodeRecord(c.buf, r.traceID, r.ids, r.starts)
		c.live += len(r.ids)
	}
	if _, err := c.f.Write(c.buf); err != nil {
		return fmt.Errorf("checkpoint: writing: %w", err)
	}
	c.size += int64(len(c.buf))
	if c.noSync {
		return nil
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("checkpoint: syncing: %w", err)
	}
	return nil
}

// compact rewrites the log with the entries of spans (those still in the
// window) when it has grown to more than twice their size.
func (c *checkpoint) compact(spans map[uint64]done) error {
	if c.live <= 2*len(spans)+1024 {
		return nil
	}
	byTrace := map[[16]byte]*record{}
	var order []*record
	for id, d := range spans {
		r := byTrace[d.traceID]
		if r == nil {
			r = &record{traceID: d.traceID}
			byTrace[d.traceID] = r
			order = append(order, r)
		}
		r.ids = append(r.ids, id)
		r.starts = append(r.starts, d.startNs)
	}
	var b []byte
	for _, r := range order {
		b = encodeRecord(b, r.traceID, r.ids, r.starts)
	}
	tmp := c.path + ".tmp"
	if err := writeSynced(tmp, b); err != nil {
		return fmt.Errorf("checkpoint: compacting: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("checkpoint: compacting: %w", err)
	}
	f, err := os.OpenFile(c.path, os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint: reopening: %w", err)
	}
	c.f.Close()
	c.f, c.size, c.live = f, int64(len(b)), len(spans)
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *checkpoint) close() error {
	if c.f == nil {
		return errors.New("checkpoint closed")
	}
	err := c.f.Close()
	c.f = nil
	return err
}
