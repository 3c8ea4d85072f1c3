package packet

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/zerotrace/zerotrace/internal/annotated"
	"github.com/zerotrace/zerotrace/pkg/span"
)

var unhex = annotated.Hex // annotated hex dumps

// A 66-byte HTTP request segment, annotated.
var tcpFrame = unhex(`
	02000000000b 02000000000a 0800     // Ethernet: dst, src, IPv4
	45 00 0038 0000 4000 40 06 0000    // IPv4: IHL 5, total 56, DF, TTL 64, TCP, checksum (unchecked)
	0acb020a 0acb020b                  // 10.203.2.10 → 10.203.2.11
	9c40 2378                          // TCP 40000 → 9080
	0000 3039 0000 0000                // seq 12345, ack 0
	50 18 ffff 0000 0000               // data offset 5, PSH|ACK, window, checksum, urgent
	47455420 2f20                      // "GET / "
	48545450 2f31 2e310d0a             // "HTTP/1.1\r\n"
`)

var (
	cliIP  = netip.MustParseAddr("10.203.2.10")
	srvIP  = netip.MustParseAddr("10.203.1.10")
	nodeA  = netip.MustParseAddr("10.204.0.2")
	nodeB  = netip.MustParseAddr("10.204.0.1")
	cli6   = netip.MustParseAddr("fd00:203::a")
	srv6   = netip.MustParseAddr("fd00:203::b")
	httpGo = []byte("GET /details/0 HTTP/1.1\r\n\r\n")
)

func innerTCP(src, dst netip.Addr) []byte {
	return IP(src, dst, ProtoTCP, TCP(40000, 9080, 0xdeadbeef, 7, FlagPSH|FlagACK, httpGo))
}

func TestDecodeAnnotated(t *testing.T) {
	var p Packet
	if err := p.Decode(tcpFrame); err != nil {
		t.Fatal(err)
	}
	if p.Src.String() != "10.203.2.10" || p.Dst.String() != "10.203.2.11" || p.SrcPort != 40000 || p.DstPort != 9080 ||
		p.Seq != 12345 || p.Flags != FlagPSH|FlagACK || string(p.Payload(tcpFrame)) != "GET / HTTP/1.1\r\n" || p.Tunnel != span.TunnelNone {
		t.Fatalf("%+v", p)
	}
}

func TestDecodeTunnels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frame  []byte
		tunnel span.TunnelType
		vni    uint32
		src    netip.Addr
		vlans  int
	}{
		{"plain", Ether(EtherIPv4, innerTCP(cliIP, srvIP)), span.TunnelNone, 0, cliIP, 0},
		{"vlan", Ether(EtherIPv4, innerTCP(cliIP, srvIP), 100), span.TunnelNone, 0, cliIP, 1},
		{"qinq", Ether(EtherIPv4, innerTCP(cliIP, srvIP), 200, 100), span.TunnelNone, 0, cliIP, 2},
		{"ipv6", Ether(EtherIPv6, IP(cli6, srv6, ProtoTCP, TCP(40000, 9080, 0xdeadbeef, 7, FlagPSH|FlagACK, httpGo))), span.TunnelNone, 0, cli6, 0},
		{"ipv6 with hop-by-hop", Ether(EtherIPv6, hopByHop(IP(cli6, srv6, ProtoTCP, TCP(40000, 9080, 0xdeadbeef, 7, FlagPSH|FlagACK, httpGo)))), span.TunnelNone, 0, cli6, 0},
		{"vxlan", Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortVXLAN, VXLAN(42, Ether(EtherIPv4, innerTCP(cliIP, srvIP)))))), span.TunnelVXLAN, 42, cliIP, 0},
		{"geneve teb with options", Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortGeneve, Geneve(7, EtherTEB, 8, Ether(EtherIPv4, innerTCP(cliIP, srvIP)))))), span.TunnelGeneve, 7, cliIP, 0},
		{"gre ip with key", Ether(EtherIPv4, IP(nodeA, nodeB, ProtoGRE, GRE(EtherIPv4, 99, false, innerTCP(cliIP, srvIP)))), span.TunnelGRE, 99, cliIP, 0},
		{"gre teb with seq", Ether(EtherIPv4, IP(nodeA, nodeB, ProtoGRE, GRE(EtherTEB, 0, true, Ether(EtherIPv4, innerTCP(cliIP, srvIP))))), span.TunnelGRE, 0, cliIP, 0},
		{"ipip 4in4", Ether(EtherIPv4, IP(nodeA, nodeB, ProtoIPIP, innerTCP(cliIP, srvIP))), span.TunnelIPIP, 0, cliIP, 0},
		{"ipip 6in4", Ether(EtherIPv4, IP(nodeA, nodeB, ProtoIPv6, IP(cli6, srv6, ProtoTCP, TCP(40000, 9080, 0xdeadbeef, 7, FlagPSH|FlagACK, httpGo)))), span.TunnelIPIP, 0, cli6, 0},
		{"vxlan in vlan", Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortVXLAN, VXLAN(5, Ether(EtherIPv4, innerTCP(cliIP, srvIP))))), 300), span.TunnelVXLAN, 5, cliIP, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			if err := p.Decode(tc.frame); err != nil {
				t.Fatal(err)
			}
			if p.Tunnel != tc.tunnel || p.VNI != tc.vni || p.Src != tc.src || p.SrcPort != 40000 || p.DstPort != 9080 ||
				p.Seq != 0xdeadbeef || p.Ack != 7 || p.Proto != ProtoTCP || string(p.Payload(tc.frame)) != string(httpGo) || p.NumVLANs != tc.vlans {
				t.Fatalf("%+v", p)
			}
			if tc.tunnel != span.TunnelNone && (p.OuterSrc != nodeA || p.OuterDst != nodeB) {
				t.Fatalf("outer %v → %v", p.OuterSrc, p.OuterDst)
			}
		})
	}
}

// hopByHop inserts an 8-byte hop-by-hop extension header into an IPv6 packet.
func hopByHop(ip6 []byte) []byte {
	out := append([]byte(nil), ip6[:40]...)
	next := out[6]
	out[6] = 0
	out[4], out[5] = byte((len(ip6)-40+8)>>8), byte(len(ip6)-40+8)
	out = append(out, next, 0, 1, 4, 0, 0, 0, 0)
	return append(out, ip6[40:]...)
}

func TestDecodeErrors(t *testing.T) {
	frag := append([]byte(nil), Ether(EtherIPv4, innerTCP(cliIP, srvIP))...)
	frag[14+7] = 10 // fragment offset 10
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":           {nil, ErrTruncated},
		"short ethernet":  {tcpFrame[:10], ErrTruncated},
		"arp":             {Ether(0x0806, make([]byte, 28)), ErrUnsupported},
		"cut tcp header":  {tcpFrame[:40], ErrTruncated},
		"bad ip version":  {Ether(EtherIPv4, []byte{0x75, 0, 0, 20}), ErrMalformed},
		"bad ihl":         {Ether(EtherIPv4, append([]byte{0x42}, make([]byte, 19)...)), ErrMalformed},
		"later fragment":  {frag, ErrFragment},
		"vxlan no vni":    {Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(1, PortVXLAN, []byte{0, 0, 0, 0, 0, 0, 0, 0}))), ErrMalformed},
		"gre version 1":   {Ether(EtherIPv4, IP(nodeA, nodeB, ProtoGRE, []byte{0, 1, 8, 0})), ErrUnsupported},
		"three vlan tags": {Ether(EtherVLAN, append([]byte{0, 3, 0x08, 0}, innerTCP(cliIP, srvIP)...), 1, 2), ErrUnsupported},
	} {
		var p Packet
		if err := p.Decode(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	frame := Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortVXLAN, VXLAN(42, Ether(EtherIPv4, innerTCP(cliIP, srvIP))))))
	var p Packet
	if n := testing.AllocsPerRun(1000, func() { p.Decode(frame) }); n != 0 {
		t.Fatalf("%v allocations per decode", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.Decode(frame[:30]) }); n != 0 {
		t.Fatalf("%v allocations per failed decode", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(tcpFrame)
	f.Add(Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortVXLAN, VXLAN(42, Ether(EtherIPv4, innerTCP(cliIP, srvIP)))))))
	f.Add(Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortGeneve, Geneve(7, EtherTEB, 8, Ether(EtherIPv4, innerTCP(cliIP, srvIP)))))))
	f.Add(Ether(EtherIPv4, IP(nodeA, nodeB, ProtoGRE, GRE(EtherTEB, 3, true, Ether(EtherIPv4, innerTCP(cliIP, srvIP))))))
	f.Add(Ether(EtherIPv4, IP(nodeA, nodeB, ProtoIPv6, IP(cli6, srv6, ProtoTCP, TCP(1, 2, 3, 4, 0, nil)))))
	f.Add(Ether(EtherIPv6, hopByHop(IP(cli6, srv6, ProtoUDP, UDP(1, 2, nil))), 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if p.Decode(b) == nil {
			if p.PayloadOffset < 0 || p.PayloadLen < 0 || p.PayloadOffset+p.PayloadLen > len(b) {
				t.Fatalf("payload [%d:+%d] outside %d bytes", p.PayloadOffset, p.PayloadLen, len(b))
			}
		}
		p.DecodeIP(b)
	})
}

func benchFrame(size int, tunnel bool) []byte {
	pad := func(n int) []byte { return make([]byte, max(0, n)) }
	if tunnel {
		f := Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortVXLAN, VXLAN(42, Ether(EtherIPv4, innerTCP(cliIP, srvIP))))))
		return Ether(EtherIPv4, IP(nodeA, nodeB, ProtoUDP, UDP(51234, PortVXLAN, VXLAN(42, Ether(EtherIPv4,
			IP(cliIP, srvIP, ProtoTCP, TCP(40000, 9080, 1, 2, FlagACK, pad(size-len(f)+len(httpGo)))))))))
	}
	return Ether(EtherIPv4, IP(cliIP, srvIP, ProtoTCP, TCP(40000, 9080, 1, 2, FlagACK, pad(size-54))))
}

func benchDecode(b *testing.B, frame []byte) {
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		if err := p.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

func BenchmarkDecode64(b *testing.B)        { benchDecode(b, benchFrame(64, false)) }
func BenchmarkDecode1500(b *testing.B)      { benchDecode(b, benchFrame(1500, false)) }
func BenchmarkDecode1500VXLAN(b *testing.B) { benchDecode(b, benchFrame(1500, true)) }
