package hpackdec

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2/hpack"
)

// Errors of a malformed block. After one, the table may be out of step
// with the sender's (the block's later entries were not added): Reset.
var (
	ErrTruncated = errors.New("hpack: block ends inside a field")
	ErrIndex0    = errors.New("hpack: index 0")
	ErrInteger   = errors.New("hpack: integer too large")
	ErrString    = errors.New("hpack: string longer than allowed")
	ErrSize      = errors.New("hpack: table size update above the allowed size")
	ErrHuffman   = errors.New("hpack: bad Huffman code")
)

// entry is one dynamic table entry; a placeholder (known false) stands for
// one whose name the block gave by an index this table does not hold.
type entry struct {
	name, value string
	size        int
	known       bool
}

// Decoder is the decoding side of one direction's HPACK context.
type Decoder struct {
	dyn        []entry // newest last
	size       int     // sum of the entries' sizes (a placeholder's name counts 0)
	max        int     // the table's size, as the sender's last update set it
	allowedMax int     // the largest size an update may set
	maxString  int
}

// New returns a decoder whose table starts empty with room for tableSize
// bytes, which the sender's updates may raise to allowedMax; a string longer
// than maxString is an error.
func New(tableSize, allowedMax, maxString int) *Decoder {
	return &Decoder{max: tableSize, allowedMax: allowedMax, maxString: maxString}
}

// Reset empties the table: the sender's entries from before are unknown,
// those it adds after keep their indexes.
func (d *Decoder) Reset() {
	clear(d.dyn)
	d.dyn, d.size = d.dyn[:0], 0
}

// Len is the number of entries in the table, placeholders included.
func (d *Decoder) Len() int { return len(d.dyn) }

// Decode decodes one whole header block, calling emit for every field
// whose name and value are known, in order. complete reports that every
// field was; err a malformed block, at the field where it was found (the
// fields before it were given).
func (d *Decoder) Decode(b []byte, emit func(name, value string)) (complete bool, err error) {
	complete = true
	for len(b) > 0 {
		c := b[0]
		switch {
		case c&0x80 != 0: // indexed field
			i, n, err := integer(b, 7)
			if err != nil {
				return false, err
			}
			b = b[n:]
			if i == 0 {
				return false, ErrIndex0
			}
			name, value, ok := d.at(i)
			if !ok {
				complete = false
				continue
			}
			emit(name, value)
		case c&0xe0 == 0x20: // dynamic table size update
			size, n, err := integer(b, 5)
			if err != nil {
				return false, err
			}
			b = b[n:]
			if size > uint64(d.allowedMax) {
				return false, ErrSize
			}
			d.max = int(size)
			d.evict(0)
		default: // a literal: with incremental indexing (01), never indexed (0001), without (0000)
			prefix, add := uint8(4), false
			if c&0xc0 == 0x40 {
				prefix, add = 6, true
			}
			i, n, err := integer(b, prefix)
			if err != nil {
				return false, err
			}
			b = b[n:]
			var name string
			known := true
			if i == 0 {
				if name, n, err = d.str(b); err != nil {
					return false, err
				}
				b = b[n:]
			} else {
				name, _, known = d.at(i)
			}
			value, n, err := d.str(b)
			if err != nil {
				return false, err
			}
			b = b[n:]
			if add {
				d.add(entry{name: name, value: value, size: len(name) + len(value) + 32, known: known})
			}
			if !known {
				complete = false
				continue
			}
			emit(name, value)
		}
	}
	return complete, nil
}

// at resolves index i: the static table, then the dynamic one newest first.
func (d *Decoder) at(i uint64) (name, value string, ok bool) {
	if i <= uint64(len(static)) {
		f := static[i-1]
		return f.Name, f.Value, true
	}
	j := i - uint64(len(static)) - 1
	if j >= uint64(len(d.dyn)) {
		return "", "", false
	}
	e := &d.dyn[len(d.dyn)-1-int(j)]
	return e.name, e.value, e.known
}

// add inserts e as the newest entry, evicting the oldest ones to make room;
// an entry larger than the table empties it and is not kept (RFC 7541
// section 4.4).
func (d *Decoder) add(e entry) {
	if e.size > d.max {
		d.Reset()
		return
	}
	d.evict(e.size)
	d.dyn = append(d.dyn, e)
	d.size += e.size
}

// evict removes the oldest entries until room more bytes fit.
func (d *Decoder) evict(room int) {
	k := 0
	for k < len(d.dyn) && d.size+room > d.max {
		d.size -= d.dyn[k].size
		k++
	}
	if k > 0 {
		n := copy(d.dyn, d.dyn[k:])
		clear(d.dyn[n:])
		d.dyn = d.dyn[:n]
	}
}

// integer reads an integer of an n-bit prefix from b (RFC 7541 section
// 5.1), returning it and the bytes it took.
func integer(b []byte, prefix uint8) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, ErrTruncated
	}
	mask := uint64(1)<<prefix - 1
	v := uint64(b[0]) & mask
	if v < mask {
		return v, 1, nil
	}
	var shift uint
	for i := 1; i < len(b); i++ {
		c := b[i]
		v += uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 1<<32 {
				return 0, 0, ErrInteger
			}
			return v, i + 1, nil
		}
		shift += 7
		if shift > 28 {
			return 0, 0, ErrInteger
		}
	}
	return 0, 0, ErrTruncated
}

// str reads a string literal (RFC 7541 section 5.2).
func (d *Decoder) str(b []byte) (string, int, error) {
	if len(b) == 0 {
		return "", 0, ErrTruncated
	}
	huff := b[0]&0x80 != 0
	l, n, err := integer(b, 7)
	if err != nil {
		return "", 0, err
	}
	if l > uint64(d.maxString) {
		return "", 0, ErrString
	}
	if uint64(len(b)-n) < l {
		return "", 0, ErrTruncated
	}
	raw := b[n : n+int(l)]
	if !huff {
		return string(raw), n + int(l), nil
	}
	s, err := hpack.HuffmanDecodeToString(raw)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrHuffman, err)
	}
	if len(s) > d.maxString {
		return "", 0, ErrString
	}
	return s, n + int(l), nil
}
