//go:build linux

package packet

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	pk "github.com/zerotrace/zerotrace/pkg/packet"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestInjectedTunnels: IPIP, GRE and Geneve devices do not exist in this
// kernel, and VLAN/QinQ need a switch: crafted frames are sent with AF_PACKET
// on one end of a veth and captured on the other, where they must decode to
// the right inner flow and sequence numbers; malformed frames are counted
// and skipped.
func TestInjectedTunnels(t *testing.T) {
	nsPath := vethNS(t, "inj", "ia", "ib")
	tx, err := OpenRing(nsPath, "ia", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// The capture listens on the sending end: a veth does not carry tagged
	// frames for VLANs it has no device for, and what was sent is what counts.
	rx, err := OpenRing(nsPath, "ia", DefaultFilter)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()

	cli, srv := netip.MustParseAddr("10.202.9.1"), netip.MustParseAddr("10.202.9.2")
	o1, o2 := netip.MustParseAddr("10.202.8.1"), netip.MustParseAddr("10.202.8.2")
	c6, s6 := netip.MustParseAddr("fd00:202::1"), netip.MustParseAddr("fd00:202::2")
	inner := func(i int) []byte {
		return pk.IP(cli, srv, pk.ProtoTCP, pk.TCP(uint16(41000+i), 80, uint32(1000*i+7), 1, pk.FlagPSH|pk.FlagACK, []byte("GET / HTTP/1.1\r\n\r\n")))
	}
	cases := []struct {
		name   string
		frame  []byte
		tunnel span.TunnelType
		vlans  int
		v6     bool
	}{
		{"ipip", pk.Ether(pk.EtherIPv4, pk.IP(o1, o2, pk.ProtoIPIP, inner(0))), span.TunnelIPIP, 0, false},
		{"6in4", pk.Ether(pk.EtherIPv4, pk.IP(o1, o2, pk.ProtoIPv6, pk.IP(c6, s6, pk.ProtoTCP, pk.TCP(41001, 80, 1007, 1, pk.FlagACK, []byte("x"))))), span.TunnelIPIP, 0, true},
		{"gre", pk.Ether(pk.EtherIPv4, pk.IP(o1, o2, pk.ProtoGRE, pk.GRE(pk.EtherIPv4, 5, false, inner(2)))), span.TunnelGRE, 0, false},
		{"gre teb", pk.Ether(pk.EtherIPv4, pk.IP(o1, o2, pk.ProtoGRE, pk.GRE(pk.EtherTEB, 0, true, pk.Ether(pk.EtherIPv4, inner(3))))), span.TunnelGRE, 0, false},
		{"geneve", pk.Ether(pk.EtherIPv4, pk.IP(o1, o2, pk.ProtoUDP, pk.UDP(50000, pk.PortGeneve, pk.Geneve(9, pk.EtherTEB, 4, pk.Ether(pk.EtherIPv4, inner(4)))))), span.TunnelGeneve, 0, false},
		{"vlan", pk.Ether(pk.EtherIPv4, inner(5), 10), span.TunnelNone, 1, false},
		{"qinq", pk.Ether(pk.EtherIPv4, inner(6), 20, 10), span.TunnelNone, 2, false},
	}
	var mu sync.Mutex
	got := map[uint16]pk.Packet{}
	var malformed, total int
	done := make(chan struct{})
	go func() {
		defer close(done)
		var p pk.Packet
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			rx.Poll(50*time.Millisecond, func(f *Frame) {
				mu.Lock()
				defer mu.Unlock()
				total++
				if err := p.Decode(f.Data); err != nil {
					malformed++
					return
				}
				if p.DstPort == 80 {
					got[p.SrcPort] = p
				}
			})
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n == len(cases) && malformed >= 2 {
				return
			}
		}
	}()
	// The ring takes frames from its open on; the reader need not run yet.
	for _, c := range cases {
		if err := tx.Send(c.frame); err != nil {
			t.Fatalf("%s: send: %v", c.name, err)
		}
	}
	// Malformed: a truncated IPv4 header and a TCP header cut short.
	tx.Send(pk.Ether(pk.EtherIPv4, []byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6}))
	tx.Send(pk.Ether(pk.EtherIPv4, pk.IP(cli, srv, pk.ProtoTCP, []byte{1, 2, 3})))
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, c := range cases {
		port := uint16(41000 + i)
		p, ok := got[port]
		if !ok {
			t.Errorf("%s: not captured", c.name)
			continue
		}
		if p.Tunnel != c.tunnel || p.NumVLANs != c.vlans || p.Seq != uint32(1000*i+7) {
			t.Errorf("%s: tunnel %v vlans %d seq %d", c.name, p.Tunnel, p.NumVLANs, p.Seq)
		}
		if c.v6 != p.Src.Is6() {
			t.Errorf("%s: inner source %v", c.name, p.Src)
		}
		if c.tunnel != span.TunnelNone && (p.OuterSrc != o1 || p.OuterDst != o2) {
			t.Errorf("%s: outer %v → %v", c.name, p.OuterSrc, p.OuterDst)
		}
	}
	if malformed < 2 {
		t.Errorf("%d malformed frames counted of %d, want 2", malformed, total)
	}
}
