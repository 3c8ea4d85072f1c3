package span

import (
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"testing"
)

// keyRowSpans are spans whose key fields take every shape IndexKeys
// distinguishes: zero or set, response equal to request or not, eBPF with
// and without a pid, server process or not, packet and SDK spans.
func keyRowSpans(n int) []Span {
	rng := rand.New(rand.NewPCG(27, 1))
	pick := func(vals ...uint64) uint64 { return vals[rng.IntN(len(vals))] }
	xids := []string{"", "", "x-1", "x-2", "4bf92f35-77b3"}
	tids := []TraceID{{}, {}, {1, 2, 3}, {0xff, 15: 0xee}}
	out := make([]Span, n)
	for i := range out {
		s := &out[i]
		s.SpanID = rng.Uint64()
		s.StartNs = rng.Int64N(1 << 50)
		s.EndNs = s.StartNs + rng.Int64N(1e9)
		s.Node = []string{"n1", "n2", "node-c"}[rng.IntN(3)]
		s.SignalSource = SignalSource(rng.IntN(3))
		s.TapSide = TapSide(rng.IntN(9))
		s.PID = uint32(pick(0, 1, 4242, 0xffff_ffff))
		s.ReqTCPSeq = uint32(pick(0, 7, 0xdead_beef))
		s.RespTCPSeq = uint32(pick(0, 7, 9))
		s.SyscallTraceIDReq = pick(0, 11, 12)
		s.SyscallTraceIDResp = pick(0, 11, 13)
		s.XRequestIDReq = xids[rng.IntN(len(xids))]
		s.XRequestIDResp = xids[rng.IntN(len(xids))]
		s.TraceID = tids[rng.IntN(len(tids))]
		s.AppSpanID = pick(0, 21, 22)
		s.ParentSpanID = pick(0, 21, 23)
		s.Service, s.RequestResource, s.Attributes = "svc", "/r", `{"a":1}`
	}
	return out
}

// TestKeyRow: KeyRow gives the span id, start and index keys that a full
// decoding gives, whatever the span it decodes into held before.
func TestKeyRow(t *testing.T) {
	in := keyRowSpans(2000)
	b := NewBuilder(nil)
	defer b.Release()
	for i := range in {
		b.Append(&in[i])
	}
	rec := b.NewRecord()
	defer rec.Release()
	r, err := NewRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	var full, keys Span
	shapes := map[int]bool{}
	for i := range in {
		r.Row(i, &full)
		if !reflect.DeepEqual(full, in[i]) {
			t.Fatalf("row %d: Row gives %+v, stored %+v", i, full, in[i])
		}
		r.Row(len(in)-1-i, &keys) // another span's fields first
		r.KeyRow(i, &keys)
		want, got := in[i].IndexKeys(nil), keys.IndexKeys(nil)
		if keys.SpanID != in[i].SpanID || keys.StartNs != in[i].StartNs || !reflect.DeepEqual(got, want) {
			t.Fatalf("row %d: KeyRow gives id %d start %d keys %v, want %d %d %v",
				i, keys.SpanID, keys.StartNs, got, in[i].SpanID, in[i].StartNs, want)
		}
		shapes[len(want)] = true
	}
	if len(shapes) < 8 {
		t.Fatalf("the spans have %d numbers of keys, want at least 8 different", len(shapes))
	}
}

// TestProcessKeyFNV: the node's hash is hash/fnv's FNV-1a 32, as stored
// shards' process keys were made with it.
func TestProcessKeyFNV(t *testing.T) {
	for _, node := range []string{"", "n1", "node-c", "gke-pool-1-4f2a", "ü\x00\xff"} {
		h := fnv.New32a()
		h.Write([]byte(node))
		for _, pid := range []uint32{0, 1, 4242, 0xffff_ffff} {
			for _, server := range []bool{false, true} {
				want := uint64(h.Sum32())<<32 | uint64(pid&0x7fff_ffff)
				if server {
					want |= 1 << 31
				}
				if k := ProcessKey(node, pid, server); k != (Key{Kind: KeyProcess, U: want}) {
					t.Errorf("ProcessKey(%q, %d, %v) = %+v, want U %#x", node, pid, server, k, want)
				}
			}
		}
	}
}
