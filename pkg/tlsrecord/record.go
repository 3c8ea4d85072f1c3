package tlsrecord

import "errors"

// Record content types and limits (RFC 8446 §5.1, RFC 5246 §6.2).
const (
	HeaderLen            = 5
	MaxBody              = 1<<14 + 2048 // TLSCiphertext.length limit
	TypeChangeCipherSpec = 20
	TypeAlert            = 21
	TypeHandshake        = 22
	TypeApplicationData  = 23
)

// Errors; values, so a bad header costs no allocation.
var (
	ErrShort   = errors.New("tlsrecord: fewer than 5 bytes")
	ErrNotTLS  = errors.New("tlsrecord: not a TLS record header")
	ErrTooLong = errors.New("tlsrecord: record longer than 2^14+2048 bytes")
)

// Header checks the record header at b[0:5] and returns its content type and
// body length.
func Header(b []byte) (typ uint8, body int, err error) {
	if len(b) < HeaderLen {
		return 0, 0, ErrShort
	}
	if b[0] < TypeChangeCipherSpec || b[0] > TypeApplicationData || b[1] != 3 || b[2] < 1 || b[2] > 4 {
		return 0, 0, ErrNotTLS
	}
	body = int(b[3])<<8 | int(b[4])
	if body > MaxBody {
		return 0, 0, ErrTooLong
	}
	if body == 0 && b[0] != TypeApplicationData {
		return 0, 0, ErrNotTLS // only application data may be empty
	}
	return b[0], body, nil
}

// headerStart checks what b holds of a header: all of it, or the start of
// one cut by the end of a segment.
func headerStart(b []byte) error {
	if len(b) >= HeaderLen {
		_, _, err := Header(b)
		return err
	}
	var h = [HeaderLen]byte{TypeApplicationData, 3, 3, 0, 1}
	copy(h[:], b)
	if len(b) == 0 {
		return ErrShort
	}
	_, _, err := Header(h[:])
	return err
}

// IsClientHello reports whether b starts with a handshake record that holds
// a ClientHello (handshake type 1): the first bytes a TLS client sends.
func IsClientHello(b []byte) bool {
	typ, _, err := Header(b)
	return err == nil && typ == TypeHandshake && len(b) > HeaderLen && b[HeaderLen] == 1
}

// Record is one record header found in a direction of the stream.
type Record struct {
	Type uint8
	Seq  uint32 // TCP sequence number of the header's first byte
	Len  int    // header and body
	Seg  uint64 // the segment its header started in (Flow's count)
	// First is the body's first byte (the handshake message type of a
	// plaintext handshake record) when the header's segment held it.
	First    byte
	HasFirst bool
}

type sink interface{ record(r Record) }

// reader follows the record boundaries of one direction of a TCP stream.
type reader struct {
	synced bool
	next   uint32 // sequence number of the next byte expected
	hdr    [HeaderLen]byte
	hdrN   int    // header bytes gathered so far (a header split over segments)
	hdrSeq uint32 // sequence number of that header's first byte
	left   int    // body bytes of the current record still to come
	lost   bool   // bytes were lost since the last record boundary
}

// feed consumes one segment. A segment wholly before next is a
// retransmission and is skipped; one overlapping it is trimmed. A gap inside
// a record's body keeps the boundaries (the body's length is known); any
// other gap, or bytes that are no record header where one must start, lose
// sync, and the reader waits for a segment that starts with a header.
func (r *reader) feed(seq uint32, p []byte, seg uint64, s sink) error {
	if !r.synced {
		if err := headerStart(p); err != nil {
			return err
		}
		r.synced, r.next, r.hdrN, r.left = true, seq, 0, 0
	}
	switch d := int32(seq - r.next); {
	case d < 0: // retransmitted bytes
		if int64(-d) >= int64(len(p)) {
			return nil
		}
		p, seq = p[-d:], r.next
	case d > 0: // bytes lost before this segment
		if r.hdrN == 0 && int(d) <= r.left {
			r.left -= int(d)
			r.lost = true
		} else {
			r.synced = false
			r.lost = true
			return r.feed(seq, p, seg, s)
		}
	}
	for len(p) > 0 {
		if r.left > 0 {
			n := min(r.left, len(p))
			r.left -= n
			p, seq = p[n:], seq+uint32(n)
			continue
		}
		if r.hdrN == 0 {
			r.hdrSeq = seq
		}
		n := copy(r.hdr[r.hdrN:], p)
		r.hdrN += n
		p, seq = p[n:], seq+uint32(n)
		if r.hdrN < HeaderLen {
			break
		}
		typ, body, err := Header(r.hdr[:])
		if err != nil {
			r.synced, r.hdrN, r.lost = false, 0, true
			return err
		}
		r.hdrN, r.left = 0, body
		x := Record{Type: typ, Seq: r.hdrSeq, Len: HeaderLen + body, Seg: seg}
		if body > 0 && len(p) > 0 {
			x.First, x.HasFirst = p[0], true
		}
		s.record(x)
	}
	r.next = seq
	return nil
}
