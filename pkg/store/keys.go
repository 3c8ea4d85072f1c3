package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Record types: the first byte of every key. All integers are big-endian
// so that keys sort by value, then by time.
const (
	pBatch  = 'B' // B batch(4)                                      → Arrow IPC bytes
	pKey    = 'K' // K kind(1) value(8) start(8) batch(4) row(4)    → empty
	pSpanID = 'I' // I span_id(8)                                     → start(8) batch(4) row(4)
	pSearch = 'T' // T nsHash(8) start(8) batch(4) row(4)             → searchVal2 (35 bytes; 27 before span/2)
	pValues = 'V' // V namespace 0 service 0 endpoint 0 protocol(1)    → empty
	pWorkld = 'W' // W namespace 0 workload (span/2 shards)             → empty
	pMeta   = 'M' // M                                                → shard meta (JSON)
)

const (
	keyLen     = 1 + 1 + 8 + 8 + 4 + 4
	spanIDLen  = 1 + 8
	searchLen  = 1 + 8 + 8 + 4 + 4
	searchVal  = 8 + 8 + 1 + 1 + 1 + 8
	searchVal2 = searchVal + 8 // + workload hash
	refLen     = 8 + 4 + 4
)

var errKey = errors.New("malformed index key")

// ref locates one span: its start time, batch and row.
type ref struct {
	start int64
	batch uint32
	row   uint32
}

// hashString is FNV-1a 64 of s (hash/fnv's, without its allocations:
// the writer hashes four strings per span).
func hashString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// keyValue maps a correlation key to its 8-byte index value. Strings and
// trace ids are hashed; lookups verify the decoded span, so a collision costs
// a read, never a wrong answer.
func keyValue(k span.Key) uint64 {
	switch k.Kind {
	case span.KeyXRequestID:
		return hashString(k.S)
	case span.KeyTraceID:
		return traceIDValue(&k.T)
	default:
		return k.U
	}
}

// traceIDValue is a trace id's key value: FNV-1a 64 of its 16 bytes.
func traceIDValue(t *span.TraceID) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range t {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

func putRef(b []byte, r ref) {
	binary.BigEndian.PutUint64(b, uint64(r.start))
	binary.BigEndian.PutUint32(b[8:], r.batch)
	binary.BigEndian.PutUint32(b[12:], r.row)
}

func getRef(b []byte) ref {
	return ref{int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:])}
}

func batchKey(batch uint32) []byte {
	b := make([]byte, 5)
	b[0] = pBatch
	binary.BigEndian.PutUint32(b[1:], batch)
	return b
}

func parseBatchKey(k []byte) (uint32, error) {
	if len(k) != 5 || k[0] != pBatch {
		return 0, fmt.Errorf("%w: batch key %x", errKey, k)
	}
	return binary.BigEndian.Uint32(k[1:]), nil
}

// corrKey builds the K entry; with r.start/batch/row zero it is the prefix
// bound of a time range scan.
func corrKey(dst []byte, kind span.KeyKind, v uint64, r ref) []byte {
	dst = append(dst[:0], make([]byte, keyLen)...)
	dst[0] = pKey
	dst[1] = byte(kind)
	binary.BigEndian.PutUint64(dst[2:], v)
	putRef(dst[10:], r)
	return dst
}

func parseCorrKey(k []byte) (span.KeyKind, uint64, ref, error) {
	if len(k) != keyLen || k[0] != pKey {
		return 0, 0, ref{}, fmt.Errorf("%w: correlation key %x", errKey, k)
	}
	return span.KeyKind(k[1]), binary.BigEndian.Uint64(k[2:]), getRef(k[10:]), nil
}

func spanIDKey(id uint64) []byte {
	b := make([]byte, spanIDLen)
	b[0] = pSpanID
	binary.BigEndian.PutUint64(b[1:], id)
	return b
}

func searchKey(dst []byte, ns uint64, r ref) []byte {
	dst = append(dst[:0], make([]byte, searchLen)...)
	dst[0] = pSearch
	binary.BigEndian.PutUint64(dst[1:], ns)
	putRef(dst[9:], r)
	return dst
}

func parseSearchKey(k []byte) (uint64, ref, error) {
	if len(k) != searchLen || k[0] != pSearch {
		return 0, ref{}, fmt.Errorf("%w: search key %x", errKey, k)
	}
	return binary.BigEndian.Uint64(k[1:]), getRef(k[9:]), nil
}

// searchFields is the covering value of a search entry: enough to filter
// without decoding the batch.
type searchFields struct {
	service, endpoint uint64
	workload          uint64 // 0 in shards written before span/2
	protocol          span.L7Protocol
	status            span.ResponseStatus
	tap               span.TapSide
	duration          int64
}

func (f searchFields) put(dst []byte) []byte {
	dst = append(dst[:0], make([]byte, searchVal2)...)
	binary.BigEndian.PutUint64(dst, f.service)
	binary.BigEndian.PutUint64(dst[8:], f.endpoint)
	dst[16] = byte(f.protocol)
	dst[17] = byte(f.status)
	dst[18] = byte(f.tap)
	binary.BigEndian.PutUint64(dst[19:], uint64(f.duration))
	binary.BigEndian.PutUint64(dst[27:], f.workload)
	return dst
}

func parseSearchFields(b []byte) (searchFields, error) {
	if len(b) != searchVal && len(b) != searchVal2 {
		return searchFields{}, fmt.Errorf("%w: search value of %d bytes", errKey, len(b))
	}
	var wl uint64
	if len(b) == searchVal2 {
		wl = binary.BigEndian.Uint64(b[27:])
	}
	return searchFields{
		workload: wl,
		service:  binary.BigEndian.Uint64(b),
		endpoint: binary.BigEndian.Uint64(b[8:]),
		protocol: span.L7Protocol(b[16]),
		status:   span.ResponseStatus(b[17]),
		tap:      span.TapSide(b[18]),
		duration: int64(binary.BigEndian.Uint64(b[19:])),
	}, nil
}

// valueEntry is one distinct (namespace, service, endpoint, protocol).
type valueEntry struct {
	Namespace, Service, Endpoint string
	Protocol                     span.L7Protocol
}

func valuesKey(v valueEntry) []byte {
	b := make([]byte, 0, 4+len(v.Namespace)+len(v.Service)+len(v.Endpoint)+1)
	b = append(b, pValues)
	b = append(b, v.Namespace...)
	b = append(b, 0)
	b = append(b, v.Service...)
	b = append(b, 0)
	b = append(b, v.Endpoint...)
	b = append(b, 0, byte(v.Protocol))
	return b
}

func parseValuesKey(k []byte) (valueEntry, error) {
	if len(k) < 5 || k[0] != pValues || k[len(k)-2] != 0 {
		return valueEntry{}, fmt.Errorf("%w: values key %q", errKey, k)
	}
	body := k[1 : len(k)-2]
	var parts [3][]byte
	n := 0
	start := 0
	for i, c := range body {
		if c == 0 {
			if n == 2 {
				return valueEntry{}, fmt.Errorf("%w: values key %q has too many fields", errKey, k)
			}
			parts[n] = body[start:i]
			n++
			start = i + 1
		}
	}
	if n != 2 {
		return valueEntry{}, fmt.Errorf("%w: values key %q has %d fields", errKey, k, n+1)
	}
	parts[2] = body[start:]
	return valueEntry{string(parts[0]), string(parts[1]), string(parts[2]), span.L7Protocol(k[len(k)-1])}, nil
}

// workloadKey is the distinct (namespace, workload) entry of a shard.
func workloadKey(ns, workload string) []byte {
	b := make([]byte, 0, 2+len(ns)+len(workload))
	b = append(b, pWorkld)
	b = append(b, ns...)
	b = append(b, 0)
	return append(b, workload...)
}

func parseWorkloadKey(k []byte) (ns, workload string, err error) {
	if len(k) < 2 || k[0] != pWorkld {
		return "", "", fmt.Errorf("%w: workload key %q", errKey, k)
	}
	n, w, ok := bytes.Cut(k[1:], []byte{0})
	if !ok || bytes.IndexByte(w, 0) >= 0 {
		return "", "", fmt.Errorf("%w: workload key %q", errKey, k)
	}
	return string(n), string(w), nil
}
