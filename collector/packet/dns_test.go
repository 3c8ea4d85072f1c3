//go:build linux

package packet

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"

	pk "github.com/zerotrace/zerotrace/pkg/packet"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// dnsMsg builds a DNS query (or a response with one A record) for name.
func dnsMsg(id uint16, name string, response bool, rcode uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, id)
	flags := uint16(0x0100)
	if response {
		flags |= 0x8080 | rcode
	}
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1)
	if response && rcode == 0 {
		binary.BigEndian.PutUint16(b[6:], 1)
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			b = append(b, byte(i-start))
			b = append(b, name[start:i]...)
			start = i + 1
		}
	}
	b = append(b, 0, 0, 1, 0, 1)
	if response && rcode == 0 {
		b = append(b, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 203, 1, 10)
	}
	return b
}

// TestDNSPackets: DNS queries and responses (one answered, one NXDOMAIN,
// answered out of order) sent on a veth become packet spans paired by DNS id.
func TestDNSPackets(t *testing.T) {
	path := vethNS(t, "dns", "da", "db")
	var mu sync.Mutex
	var spans []span.Span
	c, err := Start(Options{Node: "n", Interfaces: []Interface{{Netns: path, Name: "db", Role: RolePod}}},
		func(s *span.Span) { mu.Lock(); spans = append(spans, *s); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tx, err := OpenRing(path, "da", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	cli, srv := netip.MustParseAddr("10.202.5.1"), netip.MustParseAddr("10.202.5.53")
	udp := func(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
		return pk.Ether(pk.EtherIPv4, pk.IP(src, dst, pk.ProtoUDP, pk.UDP(sport, dport, payload)))
	}
	// The ring takes frames from Start on; the reader need not run yet.
	for _, f := range [][]byte{
		udp(cli, srv, 40000, 53, dnsMsg(7, "details.zt.test", false, 0)),
		udp(cli, srv, 40000, 53, dnsMsg(8, "missing.zt.test", false, 0)),
		udp(srv, cli, 53, 40000, dnsMsg(8, "missing.zt.test", true, 3)), // answered first
		udp(srv, cli, 53, 40000, dnsMsg(7, "details.zt.test", true, 0)),
	} {
		if err := tx.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	// A sent frame reaches db's ring when the kernel processes its
	// receive backlog, which may be after Send returned: wait for the
	// four to have been read, then Flush.
	waitFrames(t, c, path+":db", 4)
	c.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(spans) != 2 {
		t.Errorf("%d spans, want 2 (two queries answered): %+v", len(spans), spans)
	}
	got := map[string]span.Span{}
	for _, s := range spans {
		got[s.RequestResource] = s
	}
	for name, want := range map[string]span.ResponseStatus{"details.zt.test": span.StatusOK, "missing.zt.test": span.StatusClientError} {
		s, ok := got[name]
		if !ok {
			t.Errorf("no span for %s: %+v", name, spans)
			continue
		}
		if s.L7Protocol != span.L7DNS || s.RequestType != "A" || s.ResponseStatus != want || s.L4 != span.L4UDP ||
			s.ClientIP != cli || s.ServerPort != 53 || s.SignalSource != span.SourcePacket || s.CaptureNIC != "db" {
			t.Errorf("%s: %+v", name, s)
		}
	}
}
