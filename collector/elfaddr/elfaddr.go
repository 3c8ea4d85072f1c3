package elfaddr

import "debug/elf"

// FileOffset returns the offset in the file of virtual address a, and
// true, when an executable loadable segment of f (PT_LOAD with PF_X) maps a
// from the file's bytes and the file has a byte at that offset. It returns
// false when a is in no such segment, in a segment's zero-filled tail
// (Memsz beyond Filesz), or past the file's end: a segment header can claim
// more bytes than the file has.
func FileOffset(f *elf.File, a uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 || a < p.Vaddr || a-p.Vaddr >= p.Filesz {
			continue
		}
		// debug/elf refuses an Off or Filesz of 2^63 or more, so neither
		// the sum below nor the int64 conversion wraps; the segment's
		// reader stops at the file's end (and at 2^63-1).
		rel := a - p.Vaddr
		var b [1]byte
		if _, err := p.ReadAt(b[:], int64(rel)); err != nil {
			return 0, false
		}
		return p.Off + rel, true
	}
	return 0, false
}
