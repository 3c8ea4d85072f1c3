package summary

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// The byte format, all integers big-endian:
//
//	0   magic "ZTSM"
//	4   version 1
//	5   hash scheme 1: Bloom filters as github.com/bits-and-blooms/bloom/v3
//	    places keys (murmur3-128 locations, modulo the bit count), a key
//	    being its 8-byte big-endian index value
//	6   sections(2)
//	8   min_ns(8) max_ns(8) spans(8)
//	32  sections, each tag(1) length(4) payload(length):
//	    'F' filter: kind(1) hashes(1) keys(4) bits(4) then ceil(bits/64) words(8)
//	    'N' namespaces, 'S' services, 'W' workloads: count(2) then count
//	        values, each length(1) bytes (1 to 255 bytes, sorted, distinct)
//	    other tags: skipped (later versions may add sections a reader can
//	    do without)
//
// Each filter kind and each set appears at most once; an absent set
// matches every value, an absent filter holds no key.
const (
	magic      = "ZTSM"
	version    = 1
	scheme     = 1
	headerLen  = 32
	sectionHdr = 5
	filterHdr  = 10
)

// Section tags.
const (
	tagFilter     = 'F'
	tagNamespaces = 'N'
	tagServices   = 'S'
	tagWorkloads  = 'W'
)

// ErrFormat marks bytes that are not a summary Parse accepts.
var ErrFormat = errors.New("bad shard summary")

// Marshal encodes s. Filters come in kind order, so equal summaries have
// equal bytes.
func (s *Summary) Marshal() []byte {
	kinds := make([]span.KeyKind, 0, len(s.filters))
	for k := range s.filters {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	b := make([]byte, headerLen, s.size())
	copy(b, magic)
	b[4], b[5] = version, scheme
	binary.BigEndian.PutUint64(b[8:], uint64(s.MinNs))
	binary.BigEndian.PutUint64(b[16:], uint64(s.MaxNs))
	binary.BigEndian.PutUint64(b[24:], uint64(s.Spans))
	n := 0
	for _, k := range kinds {
		f := s.filters[k]
		words := f.bf.BitSet().Words()[:wordsFor(f.bf.Cap())]
		b = appendSection(b, tagFilter, filterHdr+8*len(words))
		b = append(b, byte(k), byte(f.bf.K()))
		b = binary.BigEndian.AppendUint32(b, f.keys)
		b = binary.BigEndian.AppendUint32(b, uint32(f.bf.Cap()))
		for _, w := range words {
			b = binary.BigEndian.AppendUint64(b, w)
		}
		n++
	}
	for _, set := range []struct {
		tag byte
		s   *Set
	}{{tagNamespaces, &s.Namespaces}, {tagServices, &s.Services}, {tagWorkloads, &s.Workloads}} {
		if set.s.All {
			continue
		}
		size := 2
		for _, v := range set.s.Values {
			size += 1 + len(v)
		}
		b = appendSection(b, set.tag, size)
		b = binary.BigEndian.AppendUint16(b, uint16(len(set.s.Values)))
		for _, v := range set.s.Values {
			b = append(b, byte(len(v)))
			b = append(b, v...)
		}
		n++
	}
	binary.BigEndian.PutUint16(b[6:], uint16(n))
	return b
}

func (s *Summary) size() int {
	n := headerLen
	for _, f := range s.filters {
		n += sectionHdr + filterHdr + 8*wordsFor(f.bf.Cap())
	}
	for _, set := range []*Set{&s.Namespaces, &s.Services, &s.Workloads} {
		n += sectionHdr + 2
		for _, v := range set.Values {
			n += 1 + len(v)
		}
	}
	return n
}

func wordsFor(bits uint) int { return int((bits + 63) / 64) }

func appendSection(b []byte, tag byte, size int) []byte {
	b = append(b, tag)
	return binary.BigEndian.AppendUint32(b, uint32(size))
}

// Parse decodes and checks a summary. It never keeps a reference to b.
func Parse(b []byte) (*Summary, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFormat, len(b), MaxBytes)
	}
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrFormat, len(b), headerLen)
	}
	if string(b[:4]) != magic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrFormat, b[:4], magic)
	}
	if b[4] != version || b[5] != scheme {
		return nil, fmt.Errorf("%w: version %d scheme %d, want %d and %d", ErrFormat, b[4], b[5], version, scheme)
	}
	s := &Summary{MinNs: int64(binary.BigEndian.Uint64(b[8:])), MaxNs: int64(binary.BigEndian.Uint64(b[16:])),
		Spans: int64(binary.BigEndian.Uint64(b[24:])), filters: map[span.KeyKind]*filter{},
		Namespaces: Set{All: true}, Services: Set{All: true}, Workloads: Set{All: true}}
	if s.MaxNs < s.MinNs || s.Spans < 0 {
		return nil, fmt.Errorf("%w: time range %d..%d or %d spans", ErrFormat, s.MinNs, s.MaxNs, s.Spans)
	}
	n := int(binary.BigEndian.Uint16(b[6:]))
	if n > maxSections {
		return nil, fmt.Errorf("%w: %d sections, at most %d", ErrFormat, n, maxSections)
	}
	rest := b[headerLen:]
	seenSet := map[byte]bool{}
	for i := 0; i < n; i++ {
		if len(rest) < sectionHdr {
			return nil, fmt.Errorf("%w: section %d: %d bytes left, want a %d-byte header", ErrFormat, i, len(rest), sectionHdr)
		}
		tag, size := rest[0], binary.BigEndian.Uint32(rest[1:])
		rest = rest[sectionHdr:]
		if uint64(size) > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: section %d (%q) of %d bytes, %d left", ErrFormat, i, tag, size, len(rest))
		}
		body := rest[:size]
		rest = rest[size:]
		var err error
		switch tag {
		case tagFilter:
			err = s.parseFilter(body)
		case tagNamespaces, tagServices, tagWorkloads:
			if seenSet[tag] {
				err = errors.New("set listed twice")
				break
			}
			seenSet[tag] = true
			set := map[byte]*Set{tagNamespaces: &s.Namespaces, tagServices: &s.Services, tagWorkloads: &s.Workloads}[tag]
			*set, err = parseSet(body)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %d (%q): %v", ErrFormat, i, tag, err)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last section", ErrFormat, len(rest))
	}
	return s, nil
}

func (s *Summary) parseFilter(b []byte) error {
	if len(b) < filterHdr {
		return fmt.Errorf("%d bytes, shorter than a filter header", len(b))
	}
	kind, k := span.KeyKind(b[0]), uint(b[1])
	keys, bits := binary.BigEndian.Uint32(b[2:]), uint(binary.BigEndian.Uint32(b[6:]))
	switch {
	case kind == span.KeyInvalid:
		return errors.New("filter of key kind 0")
	case s.filters[kind] != nil:
		return fmt.Errorf("second filter of key kind %d", kind)
	case k < 1 || k > maxHashes:
		return fmt.Errorf("%d hash functions, want 1 to %d", k, maxHashes)
	case bits < 64 || bits > maxBits:
		return fmt.Errorf("%d bits, want 64 to %d", bits, maxBits)
	case len(b)-filterHdr != 8*wordsFor(bits):
		return fmt.Errorf("%d bytes of words for %d bits, want %d", len(b)-filterHdr, bits, 8*wordsFor(bits))
	}
	words := make([]uint64, wordsFor(bits))
	for i := range words {
		words[i] = binary.BigEndian.Uint64(b[filterHdr+8*i:])
	}
	s.filters[kind] = &filter{keys: keys, bf: bloom.FromWithM(words, bits, k)}
	return nil
}

func parseSet(b []byte) (Set, error) {
	if len(b) < 2 {
		return Set{}, fmt.Errorf("%d bytes, want a count", len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > maxSetValues {
		return Set{}, fmt.Errorf("%d values, at most %d", n, maxSetValues)
	}
	if len(b) > 2+maxSetBytes {
		return Set{}, fmt.Errorf("%d bytes, at most %d", len(b), 2+maxSetBytes)
	}
	out := make([]string, 0, n)
	rest := b[2:]
	for i := 0; i < n; i++ {
		if len(rest) < 1 || int(rest[0]) == 0 || int(rest[0]) > len(rest)-1 {
			return Set{}, fmt.Errorf("value %d: bad length", i)
		}
		v := string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
		if i > 0 && v <= out[i-1] {
			return Set{}, fmt.Errorf("value %d not after value %d (values are sorted and distinct)", i, i-1)
		}
		out = append(out, v)
	}
	if len(rest) != 0 {
		return Set{}, fmt.Errorf("%d bytes after the last value", len(rest))
	}
	return Set{Values: out}, nil
}
