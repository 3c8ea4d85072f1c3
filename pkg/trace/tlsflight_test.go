package trace

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// meshHop is one mutual-TLS hop between two sidecars on two nodes: the
// client sidecar's plaintext span (a TLS library's uprobes: the L7 fields,
// and the sequence numbers of the ciphertext syscalls that carried them),
// the TLS flights at its vNIC and node NIC, at the server node's NIC and
// vNIC, and the server sidecar's plaintext span. The response flight begins
// with two TLS 1.3 session tickets (460 bytes), so the response's own
// records start inside it.
func meshHop(base int64, id uint64, reqSeq, respSeq uint32, cport uint16) []span.Span {
	const ms = int64(1e6)
	cli, srv := netip.MustParseAddr("10.1.1.5"), netip.MustParseAddr("10.1.2.7")
	mk := func(side span.TapSide, node, nic string, src span.SignalSource, off int64) span.Span {
		s := span.Span{SpanID: id, Node: node, TapSide: side, CaptureNIC: nic, SignalSource: src, L4: span.L4TCP, IPVersion: 4,
			ClientIP: cli, ClientPort: cport, ServerIP: srv, ServerPort: 15443, StartNs: base + off, EndNs: base + 20*ms - off}
		id++
		if src == span.SourceEBPF {
			s.PID, s.L7Protocol, s.RequestType, s.RequestResource, s.Endpoint, s.ResponseCode = 40, span.L7HTTP1, "GET", "/reviews/7", "/reviews/{id}", 200
			s.ReqTCPSeq, s.RespTCPSeq = reqSeq, respSeq+460
			s.Flags = span.FlagProxy
		} else {
			s.Flags = span.FlagTLS
			s.ReqTCPSeq, s.RequestBytes, s.RespTCPSeq, s.ResponseBytes = reqSeq, 120, respSeq, 460+900
		}
		return s
	}
	return []span.Span{
		mk(span.TapClientProcess, "n1", "", span.SourceEBPF, 0),
		mk(span.TapClientNIC, "n1", "veth1", span.SourcePacket, ms),
		mk(span.TapClientNode, "n1", "eth0", span.SourcePacket, 2*ms),
		mk(span.TapServerNode, "n2", "eth0", span.SourcePacket, 3*ms),
		mk(span.TapServerNIC, "n2", "veth7", span.SourcePacket, 4*ms),
		mk(span.TapServerProcess, "n2", "", span.SourceEBPF, 5*ms),
	}
}

func assembleFrom(t *testing.T, spans []span.Span, seed span.Span) *Trace {
	t.Helper()
	r := fill(t, []spangen.Trace{{Spans: spans}})
	tr, err := AssembleFrom(context.Background(), r, Config{}, []span.Span{seed})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func describe(tr *Trace) string {
	var b strings.Builder
	for i, s := range tr.Spans {
		p := "root"
		if tr.Parents[i] >= 0 {
			q := tr.Spans[tr.Parents[i]]
			p = q.TapSide.String() + "@" + q.Node + " (" + string(tr.Evidence[i]) + ")"
		}
		b.WriteString(s.TapSide.String() + "@" + s.Node + " " + s.OperationName() + " <- " + p + "\n")
	}
	return b.String()
}

// TestTLSFlightsJoinTheirMessage: from every span of the hop, the trace is
// the six spans chained by tap side, every flight named after the message
// it carried and still flagged tls.
func TestTLSFlightsJoinTheirMessage(t *testing.T) {
	const base = int64(1_800_000_000_000_000_000)
	hop := meshHop(base, 100, 0xfffffff0, 77_000, 40001) // the request's range wraps past 2^32
	want := `c-p@n1 GET /reviews/{id} <- root
c@n1 GET /reviews/{id} <- c-p@n1 (tcp)
c-nd@n1 GET /reviews/{id} <- c@n1 (tcp)
s-nd@n2 GET /reviews/{id} <- c-nd@n1 (tcp)
s@n2 GET /reviews/{id} <- s-nd@n2 (tcp)
s-p@n2 GET /reviews/{id} <- s@n2 (tcp)
`
	for _, seed := range hop {
		tr := assembleFrom(t, hop, seed)
		if got := describe(tr); got != want {
			t.Errorf("from %s@%s:\n%s\nwant\n%s", seed.TapSide.String(), seed.Node, got, want)
		}
		for _, s := range tr.Spans {
			if s.SignalSource == span.SourcePacket && !s.Flags.Has(span.FlagTLS) {
				t.Errorf("flight lost its tls flag: %+v", s)
			}
		}
	}
}

// TestTLSFlightsRefuse: what a flight must not join, each a case that
// would be a wrong link.
func TestTLSFlightsRefuse(t *testing.T) {
	const base = int64(1_800_000_000_000_000_000)
	flights := func(h []span.Span) []span.Span { return h[1:5] }
	for _, tc := range []struct {
		name  string
		spans func() []span.Span
		seed  int
		want  string
	}{
		{
			// HTTP/2 streams (or pipelining) on the connection: a flight may
			// carry several requests, so it joins none of them.
			name: "multiplexed",
			spans: func() []span.Span {
				h := meshHop(base, 100, 5000, 9000, 40001)
				h[0].Flags |= span.FlagMultiplexed
				h[5].Flags |= span.FlagMultiplexed
				return h
			},
			want: "c-p@n1 GET /reviews/{id} <- root\ns-p@n2 GET /reviews/{id} <- c-p@n1 (tcp)\n",
		},
		{
			// Another connection's message whose numbers fall inside the
			// flights (no number equal): not the same bytes.
			name: "another connection",
			spans: func() []span.Span {
				h := meshHop(base, 100, 5000, 9000, 40001)
				o := meshHop(base, 200, 5010, 9010, 40002)
				return append([]span.Span{o[0], o[5]}, flights(h)...)
			},
			want: "c-p@n1 GET /reviews/{id} <- root\ns-p@n2 GET /reviews/{id} <- c-p@n1 (tcp)\n",
		},
		{
			// The response read beyond the flight: a later exchange of the
			// connection, not this one.
			name: "response outside the flight",
			spans: func() []span.Span {
				h := meshHop(base, 100, 5000, 9000, 40001)
				h[0].RespTCPSeq, h[5].RespTCPSeq = 9000+460+900, 9000+460+900
				return h
			},
			want: "c-p@n1 GET /reviews/{id} <- root\ns-p@n2 GET /reviews/{id} <- c-p@n1 (tcp)\n",
		},
	} {
		tr := assembleFrom(t, tc.spans(), tc.spans()[tc.seed])
		if got := describe(tr); got != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

// TestTLSFlightRelation: the relation itself, for spans already in one set
// by other evidence (a lookup finds spans by equal numbers only).
func TestTLSFlightRelation(t *testing.T) {
	const base = int64(1_800_000_000_000_000_000)
	h := meshHop(base, 100, 5000, 9000, 40001)
	o := meshHop(base, 200, 5010, 9010, 40002) // numbers inside h's flights, another connection
	same := meshHop(base, 300, 5000, 9000, 40001)
	same[0].ReqTCPSeq = 5040 // a request whose first record is the flight's second
	cfg := Config{}
	cfg.defaults()
	for _, tc := range []struct {
		name string
		a, b *span.Span
		want bool
	}{
		{"plaintext span inside the flights of its connection", &h[1], &same[0], true},
		{"one number equal", &h[1], &h[0], true},
		{"another connection, no number equal", &h[1], &o[0], false},
		{"two flights at two points, equal numbers", &h[1], &h[3], true},
		{"two flights, one inside the other", &h[1], &o[3], false},
		{"two plaintext spans, one inside the other's numbers", &h[0], &same[0], false},
	} {
		if got := tcpRelated(&cfg, tc.a, tc.b); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if got := tcpRelated(&cfg, tc.b, tc.a); got != tc.want {
			t.Errorf("%s (swapped): %v, want %v", tc.name, got, tc.want)
		}
	}
}
