package elfaddr

import "debug/elf"

// FileOffset returns the offset in the file of virtual address a, and
// true, when an executable loadable segment of f (PT_LOAD with PF_X) maps a
// from the file's bytes and the file has a byte at that offset. It returns
// false when a is in no such segment, in a segment's zero-filled tail
// (Memsz beyond Filesz), or past the file's end: a segment header can claim
// more bytes than the file has.
func FileOffset(f *elf.File, a uint64) (uint64, bool) {
	var b [1]byte
	return read(segment(f, a, 1), a, b[:])
}

// Code returns the n bytes of code at virtual address a and the offset in
// the file of the first, when one executable loadable segment of f maps all
// of them from the file's bytes and the file holds them (FileOffset's rule
// for each byte, with all n in the first segment that maps them).
func Code(f *elf.File, a, n uint64) ([]byte, uint64, bool) {
	p := segment(f, a, n)
	if n == 0 || p == nil {
		return nil, 0, false
	}
	b := make([]byte, n)
	off, ok := read(p, a, b)
	if !ok {
		return nil, 0, false
	}
	return b, off, true
}

// read fills b with the bytes at a from segment p (nil: none) and returns
// the offset in the file of the first.
func read(p *elf.Prog, a uint64, b []byte) (uint64, bool) {
	if p == nil {
		return 0, false
	}
	// debug/elf refuses an Off or Filesz of 2^63 or more, so neither the
	// sum below nor the int64 conversion wraps; the segment's reader stops
	// at the file's end (and at 2^63-1).
	rel := a - p.Vaddr
	if _, err := p.ReadAt(b, int64(rel)); err != nil {
		return 0, false
	}
	return p.Off + rel, true
}

// segment returns the first executable loadable segment whose file bytes
// (Filesz from Vaddr) hold the n bytes at a, or nil.
func segment(f *elf.File, a, n uint64) *elf.Prog {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 || a < p.Vaddr {
			continue
		}
		if rel := a - p.Vaddr; rel < p.Filesz && n <= p.Filesz-rel {
			return p
		}
	}
	return nil
}
