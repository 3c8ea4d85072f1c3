package elfaddr

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The test file: an ELF64 header (0x40 bytes), six program headers (0x38
// bytes each, 0x40-0x190), then bytes up to 0x300, where the file ends.
const fileSize = 0x300

var segments = []elf.Prog64{
	// 0: the headers, loaded but not executable.
	{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R), Off: 0, Vaddr: 0x400000, Filesz: 0x190, Memsz: 0x190},
	// 1: code at 0x200-0x27f of the file, mapped at 0x401200; Memsz adds
	// a zero-filled tail the file does not hold.
	{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 0x200, Vaddr: 0x401200, Filesz: 0x80, Memsz: 0x100},
	// 2: executable but not loadable (a note).
	{Type: uint32(elf.PT_NOTE), Flags: uint32(elf.PF_R | elf.PF_X), Off: 0x280, Vaddr: 0x500000, Filesz: 0x40, Memsz: 0x40},
	// 3: code from 0x280 claiming 0x1000 bytes: the file ends 0x80 bytes
	// in (what FuzzFindTurns found in collector/nodejs).
	{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 0x280, Vaddr: 0x600280, Filesz: 0x1000, Memsz: 0x1000},
	// 4: code 16 bytes short of 2^63 (debug/elf refuses 2^63 and more):
	// offsets past the largest int64.
	{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 1<<63 - 0x10, Vaddr: 0x700000, Filesz: 0x100, Memsz: 0x100},
	// 5: code at segment 1's addresses from elsewhere in the file: the
	// first executable segment holding an address maps it.
	{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 0x2c0, Vaddr: 0x401200, Filesz: 0x40, Memsz: 0x40},
}

// testFile returns the bytes of the test file: the header, segments and
// then byte i at offset i (mod 256) up to fileSize.
func testFile(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	h := elf.Header64{
		Ident:     [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_DYN),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     0x40,
		Ehsize:    0x40,
		Phentsize: 0x38,
		Phnum:     uint16(len(segments)),
	}
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	if err := binary.Write(&b, binary.LittleEndian, segments); err != nil {
		t.Fatal(err)
	}
	for b.Len() < fileSize {
		b.WriteByte(byte(b.Len()))
	}
	return b.Bytes()
}

func parse(t testing.TB, data []byte) *elf.File {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("reading the test file: %v", err)
	}
	return f
}

// TestFileOffset: each address of the test file against the offset read
// off its segment table above (false: no offset).
func TestFileOffset(t *testing.T) {
	data := testFile(t)
	if len(data) != fileSize {
		t.Fatalf("test file of %d bytes, want %#x", len(data), fileSize)
	}
	f := parse(t, data)
	for _, tc := range []struct {
		name string
		a    uint64
		off  uint64
		ok   bool
	}{
		{"first byte of code", 0x401200, 0x200, true},
		{"last byte of code the file holds", 0x40127f, 0x27f, true},
		{"zero-filled tail (Memsz beyond Filesz)", 0x401280, 0, false},
		{"two segments hold it: the first maps it", 0x401210, 0x210, true},
		{"just below the code", 0x4011ff, 0, false},
		{"headers' segment, not executable", 0x400010, 0, false},
		{"executable note, not loadable", 0x500000, 0, false},
		{"long segment: the file's last byte", 0x6002ff, 0x2ff, true},
		{"long segment: the file's end", 0x600300, 0, false},
		{"long segment: its last claimed byte", 0x60127f, 0, false},
		{"segment past 2^63-1", 0x700020, 0, false},
		{"segment at 2^63-16, its first byte", 0x700000, 0, false},
		{"address 0", 0, 0, false},
		{"largest address", ^uint64(0), 0, false},
	} {
		off, ok := FileOffset(f, tc.a)
		if off != tc.off || ok != tc.ok {
			t.Errorf("%s (%#x): %#x %v, want %#x %v", tc.name, tc.a, off, ok, tc.off, tc.ok)
		}
		if ok && off < uint64(len(data)) && data[off] != byte(off) {
			t.Errorf("%s (%#x): offset %#x holds %#x, want %#x", tc.name, tc.a, off, data[off], byte(off))
		}
	}
}

// TestCode: ranges of the test file's code against the bytes and offset
// read off its segment table above (false: none).
func TestCode(t *testing.T) {
	data := testFile(t)
	f := parse(t, data)
	for _, tc := range []struct {
		name string
		a, n uint64
		off  uint64
		ok   bool
	}{
		{"all of segment 1's file bytes", 0x401200, 0x80, 0x200, true},
		{"one byte into the zero-filled tail", 0x401200, 0x81, 0, false},
		{"inside segment 1, its last byte included", 0x401270, 0x10, 0x270, true},
		{"segment 5 would hold it, the first does: its bytes", 0x401210, 0x10, 0x210, true},
		{"no bytes", 0x401200, 0, 0, false},
		{"starts below the code", 0x4011ff, 2, 0, false},
		{"long segment: up to the file's end", 0x600280, 0x80, 0x280, true},
		{"long segment: one byte past the file's end", 0x600280, 0x81, 0, false},
		{"length wrapping past 2^64", 0x401200, ^uint64(0), 0, false},
		{"segment past 2^63-1", 0x700000, 0x10, 0, false},
		{"not executable", 0x400000, 0x10, 0, false},
		{"executable note, not loadable", 0x500000, 0x10, 0, false},
	} {
		code, off, ok := Code(f, tc.a, tc.n)
		if off != tc.off || ok != tc.ok {
			t.Errorf("%s (%#x+%#x): %#x %v, want %#x %v", tc.name, tc.a, tc.n, off, ok, tc.off, tc.ok)
			continue
		}
		if !ok {
			if code != nil {
				t.Errorf("%s: %d bytes with false", tc.name, len(code))
			}
			continue
		}
		if !bytes.Equal(code, data[off:off+tc.n]) {
			t.Errorf("%s: bytes %x, want the file's %x", tc.name, code, data[off:off+tc.n])
		}
	}
}

// FuzzFileOffset: any file and address give an offset inside the file, in
// an executable loadable segment that holds the address, or none; never a
// panic.
func FuzzFileOffset(f *testing.F) {
	data := testFile(f)
	for _, a := range []uint64{0x401200, 0x600300, 0x700020} {
		f.Add(data, a)
	}
	f.Fuzz(func(t *testing.T, data []byte, a uint64) {
		ef, err := newFile(data)
		if err != nil {
			return
		}
		for _, n := range []uint64{1, 16, a >> 56} {
			if code, off, ok := Code(ef, a, n); ok && (off+n > uint64(len(data)) || !bytes.Equal(code, data[off:off+n])) {
				t.Fatalf("%#x+%d at offset %#x: not the file's bytes there (%d bytes)", a, n, off, len(data))
			}
		}
		off, ok := FileOffset(ef, a)
		if !ok {
			return
		}
		if off >= uint64(len(data)) {
			t.Fatalf("%#x at offset %#x, past the file's end (%d bytes)", a, off, len(data))
		}
		for _, p := range ef.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && a >= p.Vaddr && a-p.Vaddr < p.Filesz && p.Off+(a-p.Vaddr) == off {
				return
			}
		}
		t.Fatalf("%#x at offset %#x: no executable loadable segment maps it there", a, off)
	})
}

// newFile is elf.NewFile with a panic (debug/elf on a hostile file) as an
// error.
func newFile(data []byte) (f *elf.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reading ELF: %v", p)
		}
	}()
	return elf.NewFile(bytes.NewReader(data))
}

func BenchmarkFileOffset(b *testing.B) {
	f := parse(b, testFile(b))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := FileOffset(f, 0x6002ff); !ok {
			b.Fatal("no offset")
		}
	}
}

// TestWriteCorpus regenerates the committed seed corpus of FuzzFileOffset:
// ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus ./collector/elfaddr/.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzFileOffset")
	}
	data := testFile(t)
	seeds := map[string]uint64{
		"seed-code":              0x401200,
		"seed-zero-filled-tail":  0x401280,
		"seed-past-the-file-end": 0x600300,
		"seed-last-byte":         0x6002ff,
		"seed-past-int64":        0x700020,
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzFileOffset")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, a := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint64(%#x)\n", data, a)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
