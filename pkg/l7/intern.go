package l7

import (
	"hash/maphash"
	"sync/atomic"
)

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

var (
	internSeed = maphash.MakeSeed()
	interned   internTable
)

// intern returns b as a string, from the table when it holds it.
func intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > 128 {
		return string(b) // long values rarely repeat; not worth a slot
	}
	slot := &interned.slots[maphash.Bytes(internSeed, b)%internSlots]
	if p := slot.Load(); p != nil && *p == string(b) { // the comparison does not allocate
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
