package l7

// framer splits one direction of a connection into frames: a header whose
// size the protocol knows before reading it, then a body whose length the
// header gives. It owns what the framed protocols (HTTP/2, PostgreSQL,
// Kafka, MySQL) share: the position in the direction's byte stream, whether
// the framing is known (sync), gathering a header split across chunks,
// keeping the head of each body, and skipping bytes that were not captured.
// A protocol supplies the rest through framing.
type framer struct {
	response bool  // the server's bytes
	pos      int64 // real bytes consumed
	synced   bool  // framing known: at a frame boundary or at bytes to skip
	skip     int   // bytes to pass over before the next header (HTTP/2's preface)
	hdr      [maxFrameHeader]byte
	hn       int   // header bytes gathered
	need     int   // header size of the current frame
	hlen     int   // header size of the next frame (the protocol may change it between frames)
	in       bool  // reading a body
	body     int   // body length of the current frame
	left     int   // body bytes left
	start    int64 // offset of the current frame
	lost     bool  // body bytes of the current frame were not captured

	// keep bounds the body bytes kept in buf. whole: a chunk that does not
	// fit is dropped and marks the frame lost (a header block is of use
	// only whole); else the body is cut at keep.
	keep  int
	whole bool
	buf   []byte
}

// fromStart returns the framer of one direction (1: the server's) of a
// connection read from its first byte, keeping keep bytes of each body.
func fromStart(dir, hlen, keep int) framer {
	return framer{response: dir == 1, synced: true, hlen: hlen, keep: keep}
}

// maxFrameHeader is the largest header of the framed protocols (HTTP/2).
const maxFrameHeader = 9

// framing is what a protocol's connection tells the framers of its two
// directions; f is the direction's framer.
type framing interface {
	// sync reports whether data, the captured bytes at offset base of a
	// direction whose framing is not known, start a frame (or the bytes
	// to skip before one); it may set up the direction's state for them.
	sync(f *framer, data []byte, base int64) bool
	// frame reads a complete header: the body length, or ok false when it
	// is not plausible (the direction then waits for a chunk to sync on).
	frame(f *framer, hdr []byte) (body int, ok bool)
	// end acts on a frame whose body has been read or skipped: f.buf holds
	// its head, f.start and f.size() place it, f.lost tells a gap.
	end(f *framer)
}

// gapper is a framing told that a direction lost its framing in bytes not
// captured, the chunk ending at offset end: a message that only a later
// frame would end (PostgreSQL's ReadyForQuery) may have ended there.
type gapper interface {
	gap(f *framer, end int64)
}

// size is the length of the current frame, header and body.
func (f *framer) size() int64 { return int64(f.need + f.body) }

// feed consumes the next bytes of the direction in stream order: data is
// the captured prefix of n real bytes (len(data) <= n).
func (f *framer) feed(data []byte, n int, p framing) {
	f.frames(data, n, f.advance(n), p)
}

// advance counts n bytes of the direction and returns the offset of the
// first, for a protocol that reads something before its frames.
func (f *framer) advance(n int) int64 {
	base := f.pos
	f.pos += int64(n)
	return base
}

// frames reads the frames in data, the captured prefix of n real bytes at
// offset base, calling p.end as each ends.
func (f *framer) frames(data []byte, n int, base int64, p framing) {
	if !f.synced {
		if !p.sync(f, data, base) {
			return
		}
		f.synced, f.hn, f.in = true, 0, false
	}
	for i := 0; i < n; {
		switch {
		case f.skip > 0:
			k := min(f.skip, n-i)
			f.skip -= k
			i += k
		case f.in:
			k := min(f.left, n-i)
			c := max(0, min(k, len(data)-i)) // captured
			if c > 0 {
				f.gather(data[i : i+c])
			}
			if c < k {
				f.lost = true
			}
			f.left -= k
			i += k
			if f.left == 0 {
				f.end(p)
			}
		case i >= len(data): // a header was lost: wait for a chunk starting at a frame
			f.synced = false
			if g, ok := p.(gapper); ok {
				g.gap(f, base+int64(n))
			}
			return
		default:
			if f.hn == 0 {
				f.start = base + int64(i)
				f.need = f.hlen
			}
			var hdr []byte
			if f.hn == 0 && len(data)-i >= f.need { // the whole header at hand
				hdr = data[i : i+f.need]
				i += f.need
			} else {
				k := copy(f.hdr[f.hn:f.need], data[i:])
				f.hn += k
				i += k
				if f.hn < f.need {
					continue
				}
				f.hn = 0
				hdr = f.hdr[:f.need]
			}
			body, ok := p.frame(f, hdr)
			if !ok {
				f.synced = false
				return
			}
			f.body, f.left, f.in, f.lost, f.buf = body, body, true, false, f.buf[:0]
			if f.left == 0 {
				f.end(p)
			}
		}
	}
}

// gather keeps what it may of a chunk of the current body.
func (f *framer) gather(b []byte) {
	switch {
	case f.keep == 0:
	case f.lost: // past a gap: what follows is not the kept bytes' continuation
	case len(f.buf)+len(b) <= f.keep:
		f.buf = append(f.buf, b...)
	case f.whole:
		f.lost = true
	default:
		f.buf = append(f.buf, b[:f.keep-len(f.buf)]...)
	}
}

// Skippable is how many of the direction's next bytes the framer will
// count without keeping any (l7.Skipper): the rest of the current body once
// its head is kept (keep bytes of it, or none), or once a gap ended what
// can be kept of it (the bytes after a gap do not continue the head: a
// query's text spliced from two writes' prefixes is a wrong text). A body
// kept whole (an HTTP/2 header block) is never skippable: a gap in it
// loses the block; nor is a body whose head is still being gathered
// without a gap, which the next bytes fill.
func (f *framer) Skippable() int {
	if !f.synced || !f.in || f.skip > 0 || f.keep > 0 && (f.whole || len(f.buf) < f.keep && !f.lost) {
		return 0
	}
	return f.left
}

func (f *framer) end(p framing) {
	f.in = false
	p.end(f)
}

// dirIndex is the index of a direction in a connection's pair: 0 for the
// client's bytes, 1 for the server's.
func dirIndex(response bool) int {
	if response {
		return 1
	}
	return 0
}
