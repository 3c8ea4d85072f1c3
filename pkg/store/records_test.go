package store

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// appendRecordsRef is appendRecords as it was before issue 29's twelfth
// round: the key records from s.IndexKeys, each value from keyValue, the
// trace id's through hash/fnv. The records appendRecords writes must stay
// these bytes (shards written before and after are read alike).
func appendRecordsRef(recs *[3][]byte, s *span.Span, r ref) {
	be := binary.BigEndian
	for _, k := range s.IndexKeys(nil) {
		v := keyValue(k)
		if k.Kind == span.KeyTraceID {
			h := fnv.New64a()
			h.Write(k.T[:])
			v = h.Sum64()
		}
		b := grow(&recs[0], keyRecLen)
		b[0] = byte(k.Kind)
		be.PutUint64(b[1:], v)
		putRef(b[9:], r)
	}
	b := grow(&recs[1], spanIDRecLen)
	be.PutUint64(b, s.SpanID)
	putRef(b[8:], r)
	sf := searchFields{service: hashString(s.Service), endpoint: hashString(s.Endpoint), protocol: s.L7Protocol,
		status: s.ResponseStatus, tap: s.TapSide, duration: int64(s.Duration())}
	if s.Workload != "" {
		sf.workload = hashString(s.Workload)
	}
	b = grow(&recs[2], searchRecLen)
	be.PutUint64(b, hashString(s.Namespace))
	putRef(b[8:], r)
	sf.put(b[8+refLen : 8+refLen])
}

// TestAppendRecordsAsIndexKeys: the indexer writes every span's records
// from its fields (and the node's hash it keeps) byte for byte as from
// IndexKeys and keyValue: over Bookinfo spans and spans whose every key
// field is zero, shared with its other side (request and response ids
// equal, parent equal to the span), or its own, for eBPF spans with and
// without a pid, server and client, packet and SDK spans, and nodes that
// change from span to span or come back.
func TestAppendRecordsAsIndexKeys(t *testing.T) {
	rnd := rand.New(rand.NewPCG(29, 12))
	spans := bookinfo(t, 40)
	nodes := []string{"node-a", "node-b", "", "node-a2", "\xff\x00é"}
	pick := func(v uint64) uint64 { // zero, small, or any value
		switch rnd.IntN(3) {
		case 0:
			return 0
		case 1:
			return uint64(rnd.IntN(3)) + 1
		}
		return v
	}
	ids := []string{"", "a", "b", "0f8fad5b-d9cb-469f-a165-70867728950e"}
	for i := range 3000 {
		s := spans[i%len(spans)]
		if i >= len(spans) {
			s.Node = nodes[rnd.IntN(len(nodes))]
			s.SignalSource = []span.SignalSource{span.SourceEBPF, span.SourcePacket, span.SourceOTel}[rnd.IntN(3)]
			s.TapSide = []span.TapSide{span.TapServerProcess, span.TapClientProcess, span.TapUnknown}[rnd.IntN(3)]
			s.PID = uint32(pick(uint64(rnd.Uint32())))
			s.ReqTCPSeq, s.RespTCPSeq = uint32(pick(uint64(rnd.Uint32()))), uint32(pick(uint64(rnd.Uint32())))
			s.SyscallTraceIDReq, s.SyscallTraceIDResp = pick(rnd.Uint64()), pick(rnd.Uint64())
			s.AppSpanID, s.ParentSpanID = pick(rnd.Uint64()), pick(rnd.Uint64())
			s.XRequestIDReq, s.XRequestIDResp = ids[rnd.IntN(len(ids))], ids[rnd.IntN(len(ids))]
			s.TraceID = span.TraceID{}
			if rnd.IntN(2) == 0 {
				for j := range s.TraceID {
					s.TraceID[j] = byte(rnd.IntN(256))
				}
			}
		}
		var x indexer
		var got, want [3][]byte
		r := ref{s.StartNs, uint32(i), uint32(i)}
		// The indexer has seen the span before it (its node among them).
		x.appendRecords(&got, &spans[(i+1)%len(spans)], r)
		got = [3][]byte{}
		x.appendRecords(&got, &s, r)
		appendRecordsRef(&want, &s, r)
		for run := range want {
			if !bytes.Equal(got[run], want[run]) {
				t.Fatalf("span %d (%+v), run %q:\n got %x\nwant %x", i, s, runs[run], got[run], want[run])
			}
		}
	}
	// One indexer through nodes that change and come back.
	var x indexer
	for i := range 200 {
		s := spans[i%len(spans)]
		s.SignalSource, s.PID, s.Node = span.SourceEBPF, 7, nodes[i%len(nodes)]
		var got, want [3][]byte
		x.appendRecords(&got, &s, ref{})
		appendRecordsRef(&want, &s, ref{})
		if !bytes.Equal(got[0], want[0]) {
			t.Fatalf("span %d of node %q: key records %x, want %x", i, s.Node, got[0], want[0])
		}
	}
}
