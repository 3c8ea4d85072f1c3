package span

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
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

// TestKeyColumns derives from IndexKeys the columns it reads and compares
// them with keyColumns, the list KeyRow decodes: a column is read when
// changing it in some span (every column, in each of keyRowSpans' shapes)
// changes the span's index keys. A column IndexKeys reads that the list
// lacks fails naming it: KeyRow would leave the stale field of whatever
// span it decodes into, and the store would index a span under another's
// keys. A listed column it does not read (span_id and start_ns aside,
// which KeyRow's callers read) fails too: KeyRow decodes it for nothing.
func TestKeyColumns(t *testing.T) {
	listed := map[string]bool{}
	for _, k := range keyColumns {
		listed[columns[k].name] = true
	}
	read := map[string]bool{"span_id": true, "start_ns": true}
	spans := keyRowSpans(2000)
	for k, c := range columns {
		for i := range spans {
			s := spans[i]
			before := s.IndexKeys(nil)
			perturb(k, &s)
			if !reflect.DeepEqual(s.IndexKeys(nil), before) {
				read[c.name] = true
				break
			}
		}
	}
	for k := range columns {
		switch n := columns[k].name; {
		case read[n] && !listed[n]:
			t.Errorf("IndexKeys reads column %q (changing it changes a span's keys), which keyColumns (arrow.go) lacks: add it", n)
		case read[n] && k >= versions[0].cols:
			t.Errorf("IndexKeys reads column %q, which span/1 records lack: KeyRow cannot decode it from every version", n)
		case listed[n] && !read[n]:
			t.Errorf("keyColumns (arrow.go) lists column %q, which IndexKeys does not read: remove it", n)
		}
	}
}

// perturb changes column k's field of s (the Span field at the column's
// offset) to another value.
func perturb(k int, s *Span) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Offset != fieldOffsets[k] {
			continue
		}
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(f.Uint() + 1)
		case reflect.Int32, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Array: // TraceID
			f.Index(0).SetUint(f.Index(0).Uint() + 1)
		default:
			a, ok := f.Interface().(netip.Addr)
			if !ok {
				panic("perturb: column " + columns[k].name + " of type " + f.Type().String())
			}
			if !a.IsValid() {
				a = netip.IPv4Unspecified()
			}
			f.Set(reflect.ValueOf(a.Next()))
		}
		return
	}
	panic("perturb: no Span field at column " + columns[k].name + "'s offset")
}
