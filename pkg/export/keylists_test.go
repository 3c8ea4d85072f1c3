package export

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestKeyLists: after any sequence of adds and removes, every key finds the
// entries a plain map by span.Key holds, in order; a key with a field its
// kind does not use finds nothing and is not indexed.
func TestKeyLists(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 2))
	var keys []span.Key
	// every numeric kind (each has a map of its own), and kinds no span has
	// (the invalid one, one past the last: held like trace ids)
	for _, kind := range []span.KeyKind{span.KeyReqTCPSeq, span.KeyRespTCPSeq, span.KeySyscallTraceID, span.KeyAppSpanID, span.KeyProcess,
		span.KeyInvalid, span.KeyProcess + 1, 200} {
		for _, u := range []uint64{1, 2, 1 << 40} {
			keys = append(keys, span.Key{Kind: kind, U: u})
		}
	}
	for _, tid := range []span.TraceID{{1}, {15: 1}, {1, 15: 1}} {
		keys = append(keys, span.Key{Kind: span.KeyTraceID, T: tid})
	}
	for _, s := range []string{"a", "b", "4bf92f35"} {
		keys = append(keys, span.Key{Kind: span.KeyXRequestID, S: s})
	}
	bad := []span.Key{{Kind: span.KeyReqTCPSeq, U: 1, S: "a"}, {Kind: span.KeyReqTCPSeq, U: 1, T: span.TraceID{1}},
		{Kind: span.KeyTraceID, U: 1, T: span.TraceID{1}}, {Kind: span.KeyXRequestID, S: "a", U: 1},
		{Kind: span.KeyXRequestID, S: "a", T: span.TraceID{1}}, {Kind: span.KeyTraceID, T: span.TraceID{1}, S: "a"}}
	kl := newKeyLists()
	want := map[span.Key][]*entry{}
	for step := range 5000 {
		k := keys[rng.IntN(len(keys))]
		if l := want[k]; len(l) > 0 && rng.IntN(3) == 0 {
			e := l[rng.IntN(len(l))]
			kl.remove(k, e)
			want[k] = slices.DeleteFunc(l, func(o *entry) bool { return o == e })
		} else {
			e := &entry{startNs: int64(step)}
			x, ok := kl.list(k)
			if !ok {
				t.Fatalf("key %+v not indexed", k)
			}
			kl.lists[x] = append(kl.lists[x], e)
			want[k] = append(want[k], e)
		}
		for _, k := range keys {
			x, ok := kl.find(k)
			var got []*entry
			if ok {
				got = kl.lists[x]
			}
			if ok != (len(want[k]) > 0) || !slices.Equal(got, want[k]) {
				t.Fatalf("step %d: key %+v finds %v (%v), want %v", step, k, got, ok, want[k])
			}
		}
	}
	for _, k := range bad {
		if _, ok := kl.find(k); ok {
			t.Errorf("key %+v finds a list", k)
		}
		if _, ok := kl.list(k); ok {
			t.Errorf("key %+v was indexed", k)
		}
	}
	if live := kl.len(); live+len(kl.free) != len(kl.lists) {
		t.Errorf("%d keys and %d free lists, %d lists", live, len(kl.free), len(kl.lists))
	}
}
