package tlsrecord

import (
	"fmt"
	"net/netip"
	"testing"

	pk "github.com/zerotrace/zerotrace/pkg/packet"
)

// seg is one captured segment of a crafted conversation. mark names the
// sequence number of its first byte ("req1", "resp1": where the test's
// ground truth says a request or response begins).
type seg struct {
	d    Dir
	b    []byte
	push bool
	mark string
}

// conv is a conversation with its sequence numbers laid out: the client's
// stream from cliISN, the server's from srvISN (wrapping past 2^32).
type conv struct {
	segs  []seg
	seqs  []uint32 // of each segment's first byte
	marks map[string]uint32
}

const cliISN, srvISN = 1000, 0xffffff00

func newConv(segs ...seg) *conv {
	c := &conv{segs: segs, marks: map[string]uint32{}}
	next := [2]uint32{cliISN, srvISN}
	for _, s := range segs {
		c.seqs = append(c.seqs, next[s.d])
		if s.mark != "" {
			c.marks[s.mark] = next[s.d]
		}
		next[s.d] += uint32(len(s.b))
	}
	return c
}

// split cuts b into segments of at most n bytes; the last has PSH.
func split(d Dir, b []byte, n int, mark string) []seg {
	var out []seg
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, seg{d: d, b: b[:k], push: k == len(b), mark: mark})
		b, mark = b[k:], ""
	}
	return out
}

func flat(parts ...any) []seg {
	var out []seg
	for _, p := range parts {
		switch p := p.(type) {
		case seg:
			out = append(out, p)
		case []seg:
			out = append(out, p...)
		}
	}
	return out
}

var clientHello = cat(unhex(`
	16 0301 00c4          // handshake record, 196 bytes
	01 0000c0 0303        // ClientHello, 192 bytes, legacy version TLS 1.2
`), make([]byte, 190))

// serverHello is a ServerHello record of n body bytes.
func serverHello(n int) []byte {
	b := rec(22, n)
	b[5] = 2 // handshake type ServerHello
	return b
}

// tls12: a full TLS 1.2 handshake, then two exchanges: a request in one
// record and its response in two records of one segment (coalesced); a
// request whose header is cut after 3 bytes and a response of a full
// 16 KiB record over 1448-byte segments (split); a close_notify.
func tls12() *conv {
	req2 := rec(23, 2000)
	return newConv(flat(
		seg{d: ToServer, b: clientHello, push: true},
		seg{d: ToClient, b: cat(serverHello(80), rec(22, 900), rec(22, 4)), push: true}, // ServerHello, Certificate, ServerHelloDone
		seg{d: ToServer, b: cat(rec(22, 70), rec(20, 1), rec(22, 40)), push: true},      // ClientKeyExchange, CCS, Finished
		seg{d: ToClient, b: cat(rec(20, 1), rec(22, 40)), push: true},                   // CCS, Finished
		seg{d: ToServer, b: rec(23, 100), push: true, mark: "req1"},
		seg{d: ToClient, b: cat(rec(23, 300), rec(23, 50)), push: true, mark: "resp1"},
		seg{d: ToServer, b: req2[:3], mark: "req2"},
		seg{d: ToServer, b: req2[3:], push: true},
		split(ToClient, cat(rec(23, 1<<14), rec(23, 10)), 1448, "resp2"),
		seg{d: ToServer, b: rec(21, 26), push: true}, // close_notify
	)...)
}

// tls13: TLS 1.3 with a client certificate (mutual TLS): the server's
// encrypted handshake in its ServerHello flight; the client's Certificate,
// CertificateVerify and Finished over two segments of one write, then the
// first request in the same flight; two session tickets in the response
// flight before the response; a second exchange.
func tls13() *conv {
	return newConv(flat(
		seg{d: ToServer, b: clientHello, push: true},
		seg{d: ToClient, b: cat(serverHello(90), rec(20, 1), rec(23, 1200), rec(23, 300), rec(23, 53)), push: true},
		split(ToServer, cat(rec(20, 1), rec(23, 1500), rec(23, 300), rec(23, 53)), 1448, ""),
		seg{d: ToServer, b: rec(23, 80), push: true, mark: "req1"},
		seg{d: ToClient, b: rec(23, 200), push: true, mark: "resp1"}, // NewSessionTicket
		seg{d: ToClient, b: rec(23, 200), push: true},                // NewSessionTicket
		seg{d: ToClient, b: rec(23, 500), push: true},
		seg{d: ToServer, b: cat(rec(23, 80), rec(23, 20)), push: true, mark: "req2"},
		seg{d: ToClient, b: rec(23, 40), push: true, mark: "resp2"},
	)...)
}

type want struct {
	req, resp           string // marks
	reqBytes, respBytes int
	reqRecs, respRecs   int
}

func run(c *conv, order []int) ([]Exchange, Stats) {
	var f Flow
	var out []Exchange
	for n, i := range order {
		s := c.segs[i]
		if ex, ok := f.Feed(s.d, c.seqs[i], s.b, s.push, int64(n+1)); ok {
			out = append(out, ex)
		}
	}
	if ex, ok := f.Flush(); ok {
		out = append(out, ex)
	}
	return out, f.Stats
}

func inOrder(c *conv) []int {
	o := make([]int, len(c.segs))
	for i := range o {
		o[i] = i
	}
	return o
}

func check(t *testing.T, name string, c *conv, got []Exchange, ws []want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("%s: %d exchanges %+v, want %d", name, len(got), got, len(ws))
	}
	for i, w := range ws {
		g := got[i]
		if g.Request.Dir != ToServer || g.Response.Dir != ToClient ||
			g.Request.AppSeq != c.marks[w.req] || g.Request.AppBytes != w.reqBytes || g.Request.AppRecords != w.reqRecs ||
			g.Response.AppSeq != c.marks[w.resp] || g.Response.AppBytes != w.respBytes || g.Response.AppRecords != w.respRecs ||
			g.Request.Lost || g.Response.Lost {
			t.Errorf("%s: exchange %d\n got request %+v\n response %+v\nwant %s at %d (%d bytes, %d records), %s at %d (%d bytes, %d records)",
				name, i, g.Request, g.Response, w.req, c.marks[w.req], w.reqBytes, w.reqRecs, w.resp, c.marks[w.resp], w.respBytes, w.respRecs)
		}
	}
}

var (
	want12 = []want{{"req1", "resp1", 105, 360, 1, 2}, {"req2", "resp2", 2005, 1<<14 + 5 + 15, 1, 2}}
	want13 = []want{{"req1", "resp1", 85, 205 + 205 + 505, 1, 3}, {"req2", "resp2", 110, 45, 2, 1}}
)

func TestFlights(t *testing.T) {
	c := tls12()
	got, st := run(c, inOrder(c))
	check(t, "TLS 1.2", c, got, want12)
	if st.Unanswered != 0 || st.Unasked != 0 || st.NotTLS != 0 || st.Flights != 9 {
		t.Errorf("TLS 1.2 stats %+v", st)
	}
	c = tls13()
	got, st = run(c, inOrder(c))
	check(t, "TLS 1.3 mutual", c, got, want13)
	if st.Unanswered != 0 || st.Unasked != 0 || st.NotTLS != 0 {
		t.Errorf("TLS 1.3 stats %+v", st)
	}
	// The first segment of a flight marks when it began, its last when it ended.
	if got[0].Response.StartNs >= got[0].Response.EndNs || got[0].Request.EndNs >= got[0].Response.StartNs {
		t.Errorf("times %+v", got[0])
	}
}

// TestFlightsRetransmitted: every segment sent twice, some a third time
// overlapping the next: the same exchanges, nothing lost.
func TestFlightsRetransmitted(t *testing.T) {
	for name, mk := range map[string]func() *conv{"TLS 1.2": tls12, "TLS 1.3": tls13} {
		c := mk()
		// An overlapping retransmission: the last 10 bytes of each segment and
		// the first 10 of the next of the same direction, as one segment.
		n := len(c.segs)
		var order []int
		for i := 0; i < n; i++ {
			order = append(order, i, i)
			for j := i + 1; j < n && j == i+1; j++ {
				if c.segs[j].d == c.segs[i].d && len(c.segs[i].b) > 10 && len(c.segs[j].b) > 10 {
					b := cat(c.segs[i].b[len(c.segs[i].b)-10:], c.segs[j].b[:10])
					c.segs = append(c.segs, seg{d: c.segs[i].d, b: b})
					c.seqs = append(c.seqs, c.seqs[j]-10)
					order = append(order, len(c.segs)-1)
					break
				}
			}
		}
		got, st := run(c, order)
		w := want12
		if name == "TLS 1.3" {
			w = want13
		}
		check(t, name+" retransmitted", c, got, w)
		if st.NotTLS != 0 {
			t.Errorf("%s: %+v", name, st)
		}
	}
}

// TestFlightsLoss: a lost segment inside a record body keeps the flights
// (marked lost); a lost segment that held a header loses the flight's end
// until the next segment that starts with a header.
func TestFlightsLoss(t *testing.T) {
	c := tls12()
	var order []int
	for i, s := range c.segs {
		if s.d == ToClient && len(s.b) == 1448 && i > 0 && c.segs[i-1].mark == "resp2" {
			continue // the second segment of the 16 KiB record
		}
		order = append(order, i)
	}
	got, _ := run(c, order)
	if len(got) != 2 || !got[1].Response.Lost || got[1].Response.AppSeq != c.marks["resp2"] || got[1].Response.AppBytes != 1<<14+5+15 || got[0].Response.Lost {
		t.Fatalf("%+v", got)
	}
}

// TestFlightsUnpaired: a request never answered is no exchange; a server
// that speaks first (after a TLS 1.2 handshake) answers nothing.
func TestFlightsUnpaired(t *testing.T) {
	c := newConv(
		seg{d: ToServer, b: clientHello, push: true},
		seg{d: ToClient, b: cat(serverHello(80), rec(22, 4)), push: true},
		seg{d: ToServer, b: cat(rec(22, 70), rec(20, 1), rec(22, 40)), push: true},
		seg{d: ToClient, b: cat(rec(20, 1), rec(22, 40)), push: true},
		seg{d: ToClient, b: rec(23, 30), push: true}, // a greeting
		seg{d: ToServer, b: rec(23, 30), push: true}, // a request the capture never sees answered
	)
	got, st := run(c, inOrder(c))
	if len(got) != 0 || st.Unasked != 1 || st.Unanswered != 1 {
		t.Fatalf("%+v %+v", got, st)
	}
}

// TestFlightsInTunnels: the TLS 1.3 conversation as VXLAN and Geneve frames
// (Geneve with options; no Geneve device exists here, so crafted), decoded
// by pkg/packet and fed by the inner TCP header: the same exchanges.
func TestFlightsInTunnels(t *testing.T) {
	cli, srv := netip.MustParseAddr("10.203.2.10"), netip.MustParseAddr("10.203.1.10")
	n1, n2 := netip.MustParseAddr("10.204.0.2"), netip.MustParseAddr("10.204.0.1")
	for _, tun := range []string{"vxlan", "geneve"} {
		c := tls13()
		var f Flow
		var got []Exchange
		var p pk.Packet
		for i, s := range c.segs {
			src, dst, sp, dp := cli, srv, uint16(40000), uint16(443)
			if s.d == ToClient {
				src, dst, sp, dp = srv, cli, 443, 40000
			}
			flags := uint8(pk.FlagACK)
			if s.push {
				flags |= pk.FlagPSH
			}
			inner := pk.Ether(pk.EtherIPv4, pk.IP(src, dst, pk.ProtoTCP, pk.TCP(sp, dp, c.seqs[i], 1, flags, s.b)))
			var frame []byte
			if tun == "vxlan" {
				frame = pk.Ether(pk.EtherIPv4, pk.IP(n1, n2, pk.ProtoUDP, pk.UDP(51000+uint16(s.d), pk.PortVXLAN, pk.VXLAN(42, inner))))
			} else {
				frame = pk.Ether(pk.EtherIPv4, pk.IP(n1, n2, pk.ProtoUDP, pk.UDP(51000+uint16(s.d), pk.PortGeneve, pk.Geneve(42, pk.EtherTEB, 8, inner))))
			}
			if err := p.Decode(frame); err != nil {
				t.Fatal(err)
			}
			d := ToServer
			if p.SrcPort == 443 {
				d = ToClient
			}
			if ex, ok := f.Feed(d, p.Seq, p.Payload(frame), p.Flags&pk.FlagPSH != 0, int64(i)); ok {
				got = append(got, ex)
			}
		}
		if ex, ok := f.Flush(); ok {
			got = append(got, ex)
		}
		check(t, tun, c, got, want13)
	}
}

// TestFlowDoesNotAllocate: following records allocates nothing.
func TestFlowDoesNotAllocate(t *testing.T) {
	c := tls12()
	f := new(Flow)
	if n := testing.AllocsPerRun(100, func() {
		*f = Flow{}
		for i, s := range c.segs {
			f.Feed(s.d, c.seqs[i], s.b, s.push, int64(i))
		}
		f.Flush()
	}); n != 0 {
		t.Fatalf("%v allocations per conversation", n)
	}
}

func ExampleFlow() {
	c := tls12()
	var f Flow
	for i, s := range c.segs {
		if ex, ok := f.Feed(s.d, c.seqs[i], s.b, s.push, int64(i)); ok {
			fmt.Printf("request %d bytes at %d, response %d bytes at %d\n", ex.Request.AppBytes, ex.Request.AppSeq, ex.Response.AppBytes, ex.Response.AppSeq)
		}
	}
	// Output:
	// request 105 bytes at 1327, response 360 bytes at 794
	// request 2005 bytes at 1432, response 16404 bytes at 1154
}
