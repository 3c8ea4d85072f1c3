package cpython

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// The modules in testdata are CPython 3.11's _queue extension module as
// Debian 12 (python3.11 3.11.2) and pyenv (3.11.7) ship it, both stripped of
// static symbols. In the Debian one (readelf -S / -r, objdump -d):
//
//	.rela.dyn   file 0x0a00, 24-byte entries (r_offset, r_info, r_addend)
//	.rodata     vaddr = file offset 0x4000; method names at 0x40cf "empty",
//	            0x40d5 "get", 0x40d9 "get_nowait", 0x40e4 "put",
//	            0x40e8 "put_nowait", 0x40f3 "qsize"
//	.data       vaddr 0x6120 at file 0x5120; SimpleQueue's method table at
//	            vaddr 0x6140, 32 bytes per PyMethodDef {name, meth, flags,
//	            doc}: name and meth are R_X86_64_RELATIVE relocations, flags
//	            is in the file (get 0x282 METH_METHOD|FASTCALL|KEYWORDS at
//	            0x6170, put 0x82 FASTCALL|KEYWORDS at 0x61b0)
//	functions   get 0x2880, get_nowait 0x2580, put 0x27e0, put_nowait 0x24d4
//	            (.text: vaddr = file offset)
const (
	debian = "testdata/debian-3.11.2-_queue.so"
	pyenv  = "testdata/pyenv-3.11.7-_queue.so"

	relaDyn      = 0x0a00 // file offset of .rela.dyn
	putName      = 0x40e4 // "put\0" (vaddr = file offset)
	getNowait    = 0x40d9 // "get_nowait\0"
	putFlagsFile = 0x51b0 // put's ml_flags: vaddr 0x61b0 in .data (file = vaddr - 0x1000)
	putMethSlot  = 0x61a8 // put's ml_meth relocation slot
	qsizeName    = 0x61e0 // qsize's ml_name relocation slot
)

func read(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setAddend sets the addend of the relocation of slot in b's .rela.dyn.
func setAddend(t testing.TB, b []byte, slot, addend uint64) {
	for off := relaDyn; off+24 <= len(b); off += 24 {
		if binary.LittleEndian.Uint64(b[off:]) == slot {
			binary.LittleEndian.PutUint64(b[off+16:], addend)
			return
		}
	}
	t.Fatalf("no relocation of slot %#x", slot)
}

func TestFindQueue(t *testing.T) {
	deb := read(t, debian)
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(deb)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name    string
		file    []byte
		put     Method // want (Name, Offset, Flags)
		get     Method
		nowait  bool // put_nowait and get_nowait found
		wantErr string
	}{
		{name: "debian 3.11.2", file: deb, put: Method{"put", 0x27e0, 0x82}, get: Method{"get", 0x2880, 0x282}, nowait: true},
		{name: "pyenv 3.11.7", file: read(t, pyenv), put: Method{"put", 0x2a50, 0x82}, get: Method{"get", 0x28c0, 0x282}, nowait: true},
		{name: "get_nowait renamed: optional", file: mutate(func(b []byte) { b[getNowait+9] = 'X' }),
			put: Method{"put", 0x27e0, 0x82}, get: Method{"get", 0x2880, 0x282}},
		{name: "put renamed", file: mutate(func(b []byte) { b[putName+2] = 'x' }), wantErr: "no method table entry for SimpleQueue.put"},
		{name: "put's function outside code (points at .rodata)",
			file: mutate(func(b []byte) { setAddend(t, b, putMethSlot, putName) }), wantErr: "no method table entry for SimpleQueue.put"},
		{name: "qsize's name made a second put", file: mutate(func(b []byte) { setAddend(t, b, qsizeName, putName) }),
			wantErr: `method "put" found in 2 method tables: ambiguous`},
		{name: "put with METH_VARARGS", file: mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[putFlagsFile:], 0x1) }),
			wantErr: "calling convention 0x1 not supported"},
		{name: "i386 machine (e_machine at 18)", file: mutate(func(b []byte) { binary.LittleEndian.PutUint16(b[18:], 3) }),
			wantErr: "not an x86-64"},
		{name: "relocations typed R_X86_64_NONE", file: mutate(func(b []byte) {
			for off := relaDyn; off < relaDyn+62*24; off += 24 {
				if b[off+8] == 8 {
					b[off+8] = 0
				}
			}
		}), wantErr: "no relative relocations"},
		{name: "ELF header only", file: deb[:64], wantErr: "reading ELF"},
		{name: "not ELF", file: []byte("#!/usr/bin/env python3\n"), wantErr: "reading ELF"},
		{name: "empty", file: nil, wantErr: "reading ELF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := FindQueue(bytes.NewReader(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.Put != tc.put || q.Get != tc.get {
				t.Errorf("put %+v get %+v, want %+v %+v", q.Put, q.Get, tc.put, tc.get)
			}
			if got := q.PutNowait != nil && q.GetNowait != nil; got != tc.nowait {
				t.Errorf("nowait methods found %v, want %v (%+v %+v)", got, tc.nowait, q.PutNowait, q.GetNowait)
			}
			if item, err := q.Put.Item(); err != nil || item != ArgsInSI {
				t.Errorf("put's item: %v %v, want ArgsInSI", item, err)
			}
		})
	}
}

func TestMethodItem(t *testing.T) {
	for _, tc := range []struct {
		flags uint32
		want  ItemArg
		ok    bool
	}{
		{MethFastcall | MethKeywords, ArgsInSI, true},
		{MethMethod | MethFastcall | MethKeywords, ArgsInDX, true},
		{MethO, ItemInSI, true},
		{0x1, 0, false}, // METH_VARARGS: a tuple
	} {
		got, err := Method{Name: "put", Flags: tc.flags}.Item()
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("flags %#x: %v %v, want %v ok=%v", tc.flags, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzFindQueue: any bytes give a result or an error, never a panic; a
// result's methods lie in the file.
func FuzzFindQueue(f *testing.F) {
	f.Add(read(f, debian))
	f.Add(read(f, pyenv))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := FindQueue(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, m := range append(q.Puts(), q.Gets()...) {
			if m.Offset >= uint64(len(b)) {
				t.Fatalf("method %s at %#x, past the file's end (%d bytes)", m.Name, m.Offset, len(b))
			}
		}
	})
}

func BenchmarkFindQueue(b *testing.B) {
	file := read(b, debian)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := FindQueue(bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}
