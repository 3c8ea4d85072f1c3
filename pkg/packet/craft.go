package packet

import (
	"encoding/binary"
	"net/netip"
)

// Frame builders for tests, benchmarks and injection: they produce valid
// headers (lengths filled in; IPv4 checksum computed; TCP/UDP checksums 0).

var (
	MACA = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	MACB = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
)

// Ether prepends an Ethernet header, with optional VLAN tags (outermost first;
// the first uses 0x88a8 when two are given).
func Ether(ethertype uint16, payload []byte, vlans ...uint16) []byte {
	b := make([]byte, 0, 14+4*len(vlans)+len(payload))
	b = append(b, MACB[:]...)
	b = append(b, MACA[:]...)
	for i, v := range vlans {
		tpid := uint16(EtherVLAN)
		if len(vlans) == 2 && i == 0 {
			tpid = EtherQinQ
		}
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, ethertype)
	return append(b, payload...)
}

// IP builds an IPv4 or IPv6 header (by the address family) around payload.
func IP(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	if src.Is4() {
		h := make([]byte, 20, 20+len(payload))
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
		h[6] = 0x40 // don't fragment
		h[8] = 64
		h[9] = proto
		s4, d4 := src.As4(), dst.As4()
		copy(h[12:], s4[:])
		copy(h[16:], d4[:])
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(h[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
		return append(h, payload...)
	}
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = proto
	h[7] = 64
	s16, d16 := src.As16(), dst.As16()
	copy(h[8:], s16[:])
	copy(h[24:], d16[:])
	return append(h, payload...)
}

// TCP builds a TCP header (no options) around payload.
func TCP(sport, dport uint16, seq, ack uint32, flags uint8, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12] = 5 << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[14:], 65535)
	return append(h, payload...)
}

// UDP builds a UDP header around payload.
func UDP(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

// VXLAN builds a VXLAN header (flags: VNI valid) around an inner frame.
func VXLAN(vni uint32, inner []byte) []byte {
	h := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	return append(h, inner...)
}

// Geneve builds a Geneve header with optLen bytes of (zero) options.
func Geneve(vni uint32, proto uint16, optLen int, inner []byte) []byte {
	h := make([]byte, 8+optLen, 8+optLen+len(inner))
	h[0] = byte(optLen / 4)
	binary.BigEndian.PutUint16(h[2:], proto)
	h[4], h[5], h[6] = byte(vni>>16), byte(vni>>8), byte(vni)
	return append(h, inner...)
}

// GRE builds a GRE header, with a key when key != 0 and a sequence number
// when seq is true.
func GRE(proto uint16, key uint32, seq bool, inner []byte) []byte {
	var flags uint16
	h := make([]byte, 4, 16+len(inner))
	if key != 0 {
		flags |= 0x2000
	}
	if seq {
		flags |= 0x1000
	}
	binary.BigEndian.PutUint16(h[0:], flags)
	binary.BigEndian.PutUint16(h[2:], proto)
	if key != 0 {
		h = binary.BigEndian.AppendUint32(h, key)
	}
	if seq {
		h = binary.BigEndian.AppendUint32(h, 7)
	}
	return append(h, inner...)
}
