package cpython

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// The _asyncio modules in testdata: Debian 12's (python3.11 3.11.2, as
// shipped: stripped) and pyenv's 3.10.13, 3.12.1 and 3.13.0 (stripped with
// strip -s; the unstripped builds' symbols gave the offsets below). 3.10 and
// 3.11 define Task and TaskStepMethWrapper as static PyTypeObjects, 3.12 on
// as PyType_Specs with slot arrays. In the Debian one (readelf -S / -r,
// file offset = vaddr in every segment):
//
//	.rela.dyn   0x14e0, 24-byte entries
//	.rodata     "task_wakeup" at 0xb468, "_asyncio.Task" at 0xb48c
//	.data       task_wakeup's PyMethodDef at 0x10cc0 {name, meth (slot
//	            0x10cc8), flags 0x8 METH_O at 0x10cd0}; the Task type at
//	            0x11260 (ob_refcnt 1, tp_name slot 0x11278, tp_dealloc slot
//	            0x11290, tp_init slot 0x11388); TaskStepMethWrapper's type at
//	            0x11740 (tp_call slot 0x117c0)
//	functions   Task.__init__ 0x7230, TaskObj_dealloc 0x9130,
//	            TaskStepMethWrapper_call 0x7ba0, task_wakeup 0x8e70
//
// In pyenv's 3.12.1: the Task spec's slot array holds {60 Py_tp_init (id at
// 0x122b0), 0xa4d0 (slot 0x122b8)}.
const (
	asDebian        = "testdata/debian-3.11.2-_asyncio.so"
	asRelaDyn       = 0x14e0
	asWakeupName    = 0xb468
	asWakeupFlags   = 0x10cd0
	asTaskRefcnt    = 0x11260
	asStepCallSlot  = 0x117c0
	as312InitSlotID = 0x122b0
)

func TestFindAsyncio(t *testing.T) {
	deb := read(t, asDebian)
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(deb)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name    string
		file    []byte
		want    Asyncio
		wantErr string
	}{
		{name: "debian 3.11.2", file: deb, want: Asyncio{Init: 0x7230, Dealloc: 0x9130, Step: 0x7ba0, Wakeup: 0x8e70}},
		{name: "pyenv 3.10.13", file: read(t, "testdata/pyenv-3.10.13-_asyncio.so"),
			want: Asyncio{Init: 0x8270, Dealloc: 0x62a0, Step: 0xa3b0, Wakeup: 0x9f10}},
		{name: "pyenv 3.12.1 (type specs)", file: read(t, "testdata/pyenv-3.12.1-_asyncio.so"),
			want: Asyncio{Init: 0xa4d0, Dealloc: 0x6580, Step: 0xb1b0, Wakeup: 0xaf40}},
		{name: "pyenv 3.13.0", file: read(t, "testdata/pyenv-3.13.0-_asyncio.so"),
			want: Asyncio{Init: 0xa090, Dealloc: 0x61c0, Step: 0xae00, Wakeup: 0xaa30}},
		{name: "task_wakeup renamed", file: mutate(func(b []byte) { b[asWakeupName+5] = 'X' }),
			wantErr: "method task_wakeup: 0 method table entries"},
		{name: "task_wakeup with METH_VARARGS", file: mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[asWakeupFlags:], 0x1) }),
			wantErr: "method task_wakeup: 0 method table entries"},
		{name: "Task's refcount not a static type's", file: mutate(func(b []byte) { b[asTaskRefcnt] = 2 }),
			wantErr: "_asyncio.Task"},
		{name: "step wrapper's tp_call points at .rodata",
			file:    mutate(func(b []byte) { setAddendIn(t, b, asRelaDyn, asStepCallSlot, asWakeupName) }),
			wantErr: "TaskStepMethWrapper's tp_call: not found"},
		{name: "3.12 Task spec without Py_tp_init", file: func() []byte {
			b := read(t, "testdata/pyenv-3.12.1-_asyncio.so")
			binary.LittleEndian.PutUint32(b[as312InitSlotID:], 61) // Py_tp_is_gc
			return b
		}(), wantErr: "Task's tp_init: not found"},
		{name: "the _queue module", file: read(t, debian), wantErr: "method task_wakeup"},
		{name: "i386 machine", file: mutate(func(b []byte) { binary.LittleEndian.PutUint16(b[18:], 3) }), wantErr: "not an x86-64"},
		{name: "ELF header only", file: deb[:64], wantErr: "reading ELF"},
		{name: "empty", file: nil, wantErr: "reading ELF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := FindAsyncio(bytes.NewReader(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a != tc.want {
				t.Errorf("found %+v, want %+v", a, tc.want)
			}
		})
	}
}

// setAddendIn sets the addend of the relocation of slot in the relocation
// table at file offset rela of b.
func setAddendIn(t testing.TB, b []byte, rela int, slot, addend uint64) {
	for off := rela; off+24 <= len(b); off += 24 {
		if binary.LittleEndian.Uint64(b[off:]) == slot {
			binary.LittleEndian.PutUint64(b[off+16:], addend)
			return
		}
	}
	t.Fatalf("no relocation of slot %#x", slot)
}

// FuzzFindAsyncio: any bytes give a result or an error, never a panic; a
// result's functions lie in the file.
func FuzzFindAsyncio(f *testing.F) {
	f.Add(read(f, asDebian))
	f.Add(read(f, "testdata/pyenv-3.12.1-_asyncio.so"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := FindAsyncio(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, off := range []uint64{a.Init, a.Dealloc, a.Step, a.Wakeup} {
			if off >= uint64(len(b)) {
				t.Fatalf("function at %#x, past the file's end (%d bytes): %+v", off, len(b), a)
			}
		}
	})
}

func BenchmarkFindAsyncio(b *testing.B) {
	file := read(b, asDebian)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := FindAsyncio(bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}
