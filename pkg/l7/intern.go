package l7

import "sync/atomic"

// internTable keeps recent strings made from message bytes (HTTP/1
// methods, versions, reasons, hosts), so that a value a node sees over and
// over — every request of a connection names the same host — costs no
// allocation per message. A slot holds the last string hashed to it; a
// miss allocates the string as before (and its slot), so a table that
// thrashes costs one small allocation more, never a wrong value: a hit is
// a byte-for-byte equal string. Safe for concurrent use (parsers run on
// several goroutines: the eBPF session worker, the packet rings).
type internTable struct {
	slots [internSlots]atomic.Pointer[string]
}

const internSlots = 256

var interned internTable

// internHash is FNV-1a of b (at most 128 bytes, most under 20: a method, a
// version, a reason, a host). Unseeded, so bytes made to collide only make
// misses: one allocation each, as without the table. maphash.Bytes, called
// up to four times a message, was ~1.3% of the collector's CPU under
// nginx + wrk; this loop inlines.
func internHash(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// intern returns b as a string, from the table when it holds it.
func intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > 128 {
		return string(b) // long values rarely repeat; not worth a slot
	}
	slot := &interned.slots[internHash(b)%internSlots]
	if p := slot.Load(); p != nil && *p == string(b) { // the comparison does not allocate
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
