//go:build linux

package packet

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	pk "github.com/zerotrace/zerotrace/pkg/packet"
)

func vm(t *testing.T) *bpf.VM {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(DefaultFilter))
	for i, f := range DefaultFilter {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("default filter does not disassemble")
	}
	v, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDefaultFilter(t *testing.T) {
	v := vm(t)
	a, b := netip.MustParseAddr("10.202.1.10"), netip.MustParseAddr("10.202.2.10")
	a6, b6 := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	tcp := pk.TCP(1, 2, 3, 4, 0, []byte("x"))
	for name, tc := range map[string]struct {
		frame  []byte
		accept bool
	}{
		"tcp4":  {pk.Ether(pk.EtherIPv4, pk.IP(a, b, pk.ProtoTCP, tcp)), true},
		"udp4":  {pk.Ether(pk.EtherIPv4, pk.IP(a, b, pk.ProtoUDP, pk.UDP(1, 53, nil))), true},
		"tcp6":  {pk.Ether(pk.EtherIPv6, pk.IP(a6, b6, pk.ProtoTCP, tcp)), true},
		"gre":   {pk.Ether(pk.EtherIPv4, pk.IP(a, b, pk.ProtoGRE, pk.GRE(pk.EtherIPv4, 0, false, pk.IP(a, b, pk.ProtoTCP, tcp)))), true},
		"ipip":  {pk.Ether(pk.EtherIPv4, pk.IP(a, b, pk.ProtoIPIP, pk.IP(a, b, pk.ProtoTCP, tcp))), true},
		"vlan":  {pk.Ether(pk.EtherIPv4, pk.IP(a, b, pk.ProtoTCP, tcp), 7), true},
		"qinq":  {pk.Ether(pk.EtherIPv4, pk.IP(a, b, pk.ProtoTCP, tcp), 8, 7), true},
		"6in4":  {pk.Ether(pk.EtherIPv4, pk.IP(a, b, pk.ProtoIPv6, pk.IP(a6, b6, pk.ProtoTCP, tcp))), true},
		"udp6":  {pk.Ether(pk.EtherIPv6, pk.IP(a6, b6, pk.ProtoUDP, pk.UDP(1, 2, nil))), true},
		"icmp":  {pk.Ether(pk.EtherIPv4, pk.IP(a, b, 1, []byte{8, 0, 0, 0})), false},
		"icmp6": {pk.Ether(pk.EtherIPv6, pk.IP(a6, b6, 58, []byte{128, 0, 0, 0})), false},
		"arp":   {pk.Ether(0x0806, make([]byte, 28)), false},
	} {
		n, err := v.Run(tc.frame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if (n > 0) != tc.accept {
			t.Errorf("%s: filter returned %d, want accept=%v", name, n, tc.accept)
		}
	}
}

func TestParseDDD(t *testing.T) {
	prog, err := ParseDDD("4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n")
	if err != nil || len(prog) != 4 || prog[1].Code != 21 || prog[1].Jf != 1 || prog[1].K != 2048 {
		t.Fatalf("%v %+v", err, prog)
	}
	for _, bad := range []string{"", "2\n40 0 0 12\n", "1\n40 0 0\n", "1\n40 0 300 1\n", "1\nx y z w\n"} {
		if _, err := ParseDDD(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
