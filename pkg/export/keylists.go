package export

import (
	"encoding/binary"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// keyLists is the window's index by key: each key's spans, sorted by
// start, in lists. A span added under a key already there costs one map
// lookup; the indexes of lists emptied by eviction are in free for the
// next new key.
//
// A key is held without its string where it has none (no pointers: the
// garbage collector does not scan those maps): a numeric key of a known
// kind by its value in that kind's map of byU (one word: Go's fast path
// for 8-byte keys, hashing and comparing the 24-byte numKey was a third of
// the window's lookups), trace-id keys and any other kind as three words in
// byNum, X-Request-IDs by their string in byXRID. They find exactly the
// keys span.Key's equality finds.
type keyLists struct {
	byU    [uKinds]map[uint64]int32
	byNum  map[numKey]int32
	byXRID map[string]int32
	lists  [][]*entry
	free   []int32
}

// uKinds bounds the kinds byU holds (span.KeyProcess is the last).
const uKinds = int(span.KeyProcess) + 1

type numKey struct{ kind, a, b uint64 }

func newKeyLists() keyLists {
	kl := keyLists{byNum: map[numKey]int32{}, byXRID: map[string]int32{}}
	for i := range kl.byU {
		kl.byU[i] = map[uint64]int32{}
	}
	return kl
}

// uMap is the map of byU that holds n (n.a its key), if one does.
func (kl *keyLists) uMap(n numKey) (map[uint64]int32, bool) {
	if n.kind >= uint64(uKinds) || n.kind == uint64(span.KeyTraceID) {
		return nil, false
	}
	return kl.byU[n.kind], true
}

// len is the number of keys indexed.
func (kl *keyLists) len() int {
	n := len(kl.byNum) + len(kl.byXRID)
	for _, m := range kl.byU {
		n += len(m)
	}
	return n
}

// numKeyOf is k's numKey; ok is false for an X-Request-ID and for a key
// with a field its kind does not use (indexed spans' keys have none, so
// such a key finds nothing, as with span.Key).
func numKeyOf(k span.Key) (n numKey, ok bool) {
	switch {
	case k.Kind == span.KeyXRequestID || k.S != "":
		return n, false
	case k.Kind == span.KeyTraceID:
		if k.U != 0 {
			return n, false
		}
		return numKey{uint64(k.Kind), binary.BigEndian.Uint64(k.T[:8]), binary.BigEndian.Uint64(k.T[8:])}, true
	case k.T != span.TraceID{}:
		return n, false
	}
	return numKey{kind: uint64(k.Kind), a: k.U}, true
}

// xridOf reports whether k is an X-Request-ID key with nothing else set.
func xridOf(k span.Key) bool {
	return k.Kind == span.KeyXRequestID && k.U == 0 && k.T == span.TraceID{}
}

// find returns the index of k's list, if k has one.
func (kl *keyLists) find(k span.Key) (int32, bool) {
	if n, ok := numKeyOf(k); ok {
		if m, ok := kl.uMap(n); ok {
			x, ok := m[n.a]
			return x, ok
		}
		x, ok := kl.byNum[n]
		return x, ok
	}
	if xridOf(k) {
		x, ok := kl.byXRID[k.S]
		return x, ok
	}
	return 0, false
}

// list returns the index of k's list, adding an empty one for a new key;
// ok is false for a key with a field its kind does not use (no span's
// index key: the window indexes nothing under it, and finds nothing).
func (kl *keyLists) list(k span.Key) (x int32, ok bool) {
	if x, ok := kl.find(k); ok {
		return x, true
	}
	n, num := numKeyOf(k)
	if !num && !xridOf(k) {
		return 0, false
	}
	if l := len(kl.free); l > 0 {
		x = kl.free[l-1]
		kl.free = kl.free[:l-1]
	} else {
		x = int32(len(kl.lists))
		kl.lists = append(kl.lists, nil)
	}
	if m, ok := kl.uMap(n); num && ok {
		m[n.a] = x
	} else if num {
		kl.byNum[n] = x
	} else {
		kl.byXRID[k.S] = x
	}
	return x, true
}

// remove takes e out of k's list, dropping the list when it empties.
func (kl *keyLists) remove(k span.Key, e *entry) {
	x, ok := kl.find(k)
	if !ok {
		return
	}
	l := kl.lists[x]
	for i, o := range l { // the oldest: at the front
		if o == e {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) > 0 {
		kl.lists[x] = l
		return
	}
	if n, ok := numKeyOf(k); ok {
		if m, ok := kl.uMap(n); ok {
			delete(m, n.a)
		} else {
			delete(kl.byNum, n)
		}
	} else {
		delete(kl.byXRID, k.S)
	}
	kl.lists[x] = nil
	kl.free = append(kl.free, x)
}
