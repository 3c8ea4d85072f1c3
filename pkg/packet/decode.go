package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Errors; they are values, so decoding a bad frame does not allocate.
var (
	ErrTruncated   = errors.New("packet: truncated")
	ErrUnsupported = errors.New("packet: unsupported protocol")
	ErrMalformed   = errors.New("packet: malformed header")
	ErrFragment    = errors.New("packet: non-first IP fragment")
)

// Ethertypes and IP protocols.
const (
	EtherIPv4  = 0x0800
	EtherIPv6  = 0x86DD
	EtherVLAN  = 0x8100
	EtherQinQ  = 0x88A8
	EtherTEB   = 0x6558 // transparent Ethernet bridging (GRE, Geneve)
	ProtoIPIP  = 4
	ProtoTCP   = 6
	ProtoUDP   = 17
	ProtoIPv6  = 41
	ProtoGRE   = 47
	PortVXLAN  = 4789
	PortGeneve = 6081
)

// Packet is one decoded frame. Reuse it: Decode overwrites every field.
type Packet struct {
	VLANs    [2]uint16
	NumVLANs int

	Tunnel             span.TunnelType
	OuterSrc, OuterDst netip.Addr
	VNI                uint32 // VXLAN/Geneve VNI or GRE key

	IPVersion        uint8
	Src, Dst         netip.Addr // inner addresses
	Proto            uint8      // ProtoTCP or ProtoUDP
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8 // TCP flags
	PayloadOffset    int   // into the frame
	PayloadLen       int
}

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// Payload returns the L4 payload of frame.
func (p *Packet) Payload(frame []byte) []byte {
	return frame[p.PayloadOffset : p.PayloadOffset+p.PayloadLen]
}

// Decode decodes an Ethernet frame.
func (p *Packet) Decode(frame []byte) error {
	*p = Packet{}
	return p.ethernet(frame, 0, true)
}

// DecodeIP decodes a frame that starts with the IP header (cooked captures,
// IPIP devices).
func (p *Packet) DecodeIP(frame []byte) error {
	*p = Packet{}
	return p.ip(frame, 0, true)
}

func (p *Packet) ethernet(b []byte, off int, outer bool) error {
	if len(b) < off+14 {
		return ErrTruncated
	}
	et := binary.BigEndian.Uint16(b[off+12:])
	off += 14
	for et == EtherVLAN || et == EtherQinQ {
		if len(b) < off+4 {
			return ErrTruncated
		}
		if p.NumVLANs < len(p.VLANs) {
			p.VLANs[p.NumVLANs] = binary.BigEndian.Uint16(b[off:]) & 0x0fff
			p.NumVLANs++
		} else {
			return ErrUnsupported
		}
		et = binary.BigEndian.Uint16(b[off+2:])
		off += 4
	}
	switch et {
	case EtherIPv4, EtherIPv6:
		return p.ip(b, off, outer)
	}
	return ErrUnsupported
}

// ip decodes an IPv4 or IPv6 header at off; outer is false inside a tunnel.
func (p *Packet) ip(b []byte, off int, outer bool) error {
	if len(b) < off+1 {
		return ErrTruncated
	}
	var proto uint8
	var src, dst netip.Addr
	var end int // end of the IP packet
	switch b[off] >> 4 {
	case 4:
		if len(b) < off+20 {
			return ErrTruncated
		}
		ihl := int(b[off]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[off+2:]))
		if ihl < 20 || total < ihl {
			return ErrMalformed
		}
		if len(b) < off+ihl {
			return ErrTruncated
		}
		frag := binary.BigEndian.Uint16(b[off+6:])
		if frag&0x1fff != 0 {
			return ErrFragment
		}
		proto = b[off+9]
		src = netip.AddrFrom4([4]byte(b[off+12 : off+16]))
		dst = netip.AddrFrom4([4]byte(b[off+16 : off+20]))
		end = min(off+total, len(b))
		off += ihl
		p.IPVersion = 4
	case 6:
		if len(b) < off+40 {
			return ErrTruncated
		}
		plen := int(binary.BigEndian.Uint16(b[off+4:]))
		proto = b[off+6]
		src = netip.AddrFrom16([16]byte(b[off+8 : off+24]))
		dst = netip.AddrFrom16([16]byte(b[off+24 : off+40]))
		off += 40
		end = min(off+plen, len(b))
		p.IPVersion = 6
		// Extension headers: hop-by-hop 0, routing 43, fragment 44, destination options 60.
	ext:
		for i := 0; i < 8; i++ {
			switch proto {
			case 0, 43, 60:
				if len(b) < off+8 {
					return ErrTruncated
				}
				proto = b[off]
				off += (int(b[off+1]) + 1) * 8
				continue
			case 44:
				if len(b) < off+8 {
					return ErrTruncated
				}
				if binary.BigEndian.Uint16(b[off+2:])&0xfff8 != 0 {
					return ErrFragment
				}
				proto = b[off]
				off += 8
				continue
			}
			break ext
		}
		if off > end {
			return ErrMalformed
		}
	default:
		return ErrMalformed
	}
	p.Src, p.Dst = src, dst
	switch proto {
	case ProtoTCP:
		return p.tcp(b[:end], off)
	case ProtoUDP:
		if err := p.udp(b[:end], off); err != nil {
			return err
		}
		if outer && (p.DstPort == PortVXLAN || p.DstPort == PortGeneve) {
			return p.udpTunnel(b[:end])
		}
		return nil
	case ProtoIPIP, ProtoIPv6:
		if !outer {
			return ErrUnsupported
		}
		p.Tunnel, p.OuterSrc, p.OuterDst = span.TunnelIPIP, src, dst
		return p.ip(b[:end], off, false)
	case ProtoGRE:
		if !outer {
			return ErrUnsupported
		}
		return p.gre(b[:end], off, src, dst)
	}
	return ErrUnsupported
}

func (p *Packet) tcp(b []byte, off int) error {
	if len(b) < off+20 {
		return ErrTruncated
	}
	doff := int(b[off+12]>>4) * 4
	if doff < 20 {
		return ErrMalformed
	}
	if len(b) < off+doff {
		return ErrTruncated
	}
	p.Proto = ProtoTCP
	p.SrcPort = binary.BigEndian.Uint16(b[off:])
	p.DstPort = binary.BigEndian.Uint16(b[off+2:])
	p.Seq = binary.BigEndian.Uint32(b[off+4:])
	p.Ack = binary.BigEndian.Uint32(b[off+8:])
	p.Flags = b[off+13]
	p.PayloadOffset = off + doff
	p.PayloadLen = len(b) - p.PayloadOffset
	return nil
}

func (p *Packet) udp(b []byte, off int) error {
	if len(b) < off+8 {
		return ErrTruncated
	}
	p.Proto = ProtoUDP
	p.SrcPort = binary.BigEndian.Uint16(b[off:])
	p.DstPort = binary.BigEndian.Uint16(b[off+2:])
	p.PayloadOffset = off + 8
	p.PayloadLen = len(b) - p.PayloadOffset
	return nil
}

// udpTunnel decapsulates VXLAN or Geneve from the UDP payload just decoded.
func (p *Packet) udpTunnel(b []byte) error {
	off := p.PayloadOffset
	outerSrc, outerDst := p.Src, p.Dst
	if p.DstPort == PortVXLAN {
		if len(b) < off+8 {
			return ErrTruncated
		}
		if b[off]&0x08 == 0 {
			return ErrMalformed // VNI flag not set
		}
		vni := uint32(b[off+4])<<16 | uint32(b[off+5])<<8 | uint32(b[off+6])
		*p = Packet{VLANs: p.VLANs, NumVLANs: p.NumVLANs}
		p.Tunnel, p.OuterSrc, p.OuterDst, p.VNI = span.TunnelVXLAN, outerSrc, outerDst, vni
		return p.ethernet(b, off+8, false)
	}
	// Geneve: ver(2) optlen(6) | flags | protocol(16) | VNI(24) rsvd | options
	if len(b) < off+8 {
		return ErrTruncated
	}
	optLen := int(b[off]&0x3f) * 4
	proto := binary.BigEndian.Uint16(b[off+2:])
	vni := uint32(b[off+4])<<16 | uint32(b[off+5])<<8 | uint32(b[off+6])
	inner := off + 8 + optLen
	if len(b) < inner {
		return ErrTruncated
	}
	*p = Packet{VLANs: p.VLANs, NumVLANs: p.NumVLANs}
	p.Tunnel, p.OuterSrc, p.OuterDst, p.VNI = span.TunnelGeneve, outerSrc, outerDst, vni
	switch proto {
	case EtherTEB:
		return p.ethernet(b, inner, false)
	case EtherIPv4, EtherIPv6:
		return p.ip(b, inner, false)
	}
	return ErrUnsupported
}

func (p *Packet) gre(b []byte, off int, src, dst netip.Addr) error {
	if len(b) < off+4 {
		return ErrTruncated
	}
	flags := binary.BigEndian.Uint16(b[off:])
	if flags&0x0007 != 0 {
		return ErrUnsupported // only GRE version 0
	}
	proto := binary.BigEndian.Uint16(b[off+2:])
	n := off + 4
	var key uint32
	if flags&0x8000 != 0 { // checksum present
		n += 4
	}
	if flags&0x2000 != 0 { // key present
		if len(b) < n+4 {
			return ErrTruncated
		}
		key = binary.BigEndian.Uint32(b[n:])
		n += 4
	}
	if flags&0x1000 != 0 { // sequence number present
		n += 4
	}
	if len(b) < n {
		return ErrTruncated
	}
	p.Tunnel, p.OuterSrc, p.OuterDst, p.VNI = span.TunnelGRE, src, dst, key
	switch proto {
	case EtherTEB:
		return p.ethernet(b, n, false)
	case EtherIPv4, EtherIPv6:
		return p.ip(b, n, false)
	}
	return ErrUnsupported
}
