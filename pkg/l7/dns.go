package l7

import (
	"encoding/binary"
	"strconv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// DNS parses DNS messages (RFC 1035): the header, the first question's name
// and type, the answer count and the response code. Over TCP a message is
// preceded by its 2-byte length; the parser is told which with TCP.
type DNS struct{ TCP bool }

func (DNS) Protocol() span.L7Protocol { return span.L7DNS }

var qtypes = map[uint16]string{1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
	33: "SRV", 35: "NAPTR", 43: "DS", 46: "RRSIG", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY"}

// Detect checks that b is a plausible query: opcode QUERY, one question, no
// answers, a well-formed name.
func (d DNS) Detect(b []byte) bool {
	var m Message
	return d.Parse(b, &m) == nil && !m.Response
}

// Parse reads a query or a response.
func (d DNS) Parse(b []byte, m *Message) error {
	*m = Message{Protocol: span.L7DNS}
	total := len(b)
	if d.TCP {
		if len(b) < 2 {
			return ErrIncomplete
		}
		total = int(binary.BigEndian.Uint16(b)) + 2
		b = b[2:]
	}
	if len(b) < 12 {
		return ErrMalformed
	}
	id := binary.BigEndian.Uint16(b)
	flags := binary.BigEndian.Uint16(b[2:])
	qd := binary.BigEndian.Uint16(b[4:])
	an := binary.BigEndian.Uint16(b[6:])
	opcode := (flags >> 11) & 0xf
	if opcode > 5 || qd != 1 || flags&0x0040 != 0 { // the Z bit is zero
		return ErrMalformed
	}
	m.Response = flags&0x8000 != 0
	if !m.Response && an != 0 {
		return ErrMalformed
	}
	m.StreamID = uint32(id)
	name, off, ok := dnsName(b, 12)
	if !ok || off+4 > len(b) {
		return ErrMalformed
	}
	qtype := binary.BigEndian.Uint16(b[off:])
	if t, ok := qtypes[qtype]; ok {
		m.Method = t
	} else {
		m.Method = "TYPE" + strconv.Itoa(int(qtype))
	}
	m.Path = name
	if m.Response {
		rcode := int(flags & 0xf)
		m.Status = rcode
		m.Reason = rcodeName(rcode)
		switch rcode {
		case 0:
			m.RespStatus = span.StatusOK
		case 2, 4: // SERVFAIL, NOTIMP
			m.RespStatus = span.StatusServerError
		default: // FORMERR, NXDOMAIN, REFUSED, …
			m.RespStatus = span.StatusClientError
		}
		m.Answers = int(an)
	}
	m.HeaderLen = total
	if !m.Response {
		m.BodyLen = 0
	}
	return nil
}

func rcodeName(r int) string {
	switch r {
	case 0:
		return "NOERROR"
	case 1:
		return "FORMERR"
	case 2:
		return "SERVFAIL"
	case 3:
		return "NXDOMAIN"
	case 4:
		return "NOTIMP"
	case 5:
		return "REFUSED"
	}
	return "RCODE" + strconv.Itoa(r)
}

// dnsName reads a (possibly compressed) name at off; it returns the name
// and the offset after it in the message.
func dnsName(b []byte, off int) (string, int, bool) {
	var buf [255]byte
	n := 0
	end := -1
	for hops := 0; hops < 16; {
		if off >= len(b) {
			return "", 0, false
		}
		l := int(b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			if n == 0 {
				return ".", end, true
			}
			return string(buf[:n-1]), end, true
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return "", 0, false
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(b[off:]) & 0x3fff)
			hops++
		case l&0xc0 != 0:
			return "", 0, false
		default:
			if off+1+l > len(b) || n+l+1 > len(buf) {
				return "", 0, false
			}
			for _, c := range b[off+1 : off+1+l] {
				if c <= ' ' || c >= 0x7f {
					return "", 0, false
				}
			}
			n += copy(buf[n:], b[off+1:off+1+l])
			buf[n] = '.'
			n++
			off += 1 + l
		}
	}
	return "", 0, false
}
