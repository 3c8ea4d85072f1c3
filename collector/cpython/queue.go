package cpython

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/zerotrace/zerotrace/collector/elfaddr"
)

// CPython's method flags (Include/methodobject.h).
const (
	MethKeywords = 0x0002
	MethO        = 0x0008
	MethFastcall = 0x0080
	MethMethod   = 0x0200
)

// ItemArg says where a put method's uprobe finds the item (the register
// holding it or an array of arguments whose first is the item), from the
// method's calling convention. It is the uprobe's cookie
// (bpf/socket/pyqueue.h PY_ITEM_*).
type ItemArg uint64

const (
	ArgsInSI ItemArg = 0 // METH_FASTCALL: (self, args, nargs[, kwnames])
	ArgsInDX ItemArg = 1 // METH_METHOD|METH_FASTCALL: (self, cls, args, nargs, kwnames)
	ItemInSI ItemArg = 2 // METH_O: (self, item)
)

// Method is a C function behind a method of SimpleQueue.
type Method struct {
	Name   string
	Offset uint64 // of its first instruction in the file (a uprobe's address)
	Flags  uint32
}

// Item returns where the method's item argument is at its entry.
func (m Method) Item() (ItemArg, error) {
	switch {
	case m.Flags&MethO != 0:
		return ItemInSI, nil
	case m.Flags&(MethFastcall|MethMethod) == MethFastcall|MethMethod:
		return ArgsInDX, nil
	case m.Flags&MethFastcall != 0:
		return ArgsInSI, nil
	}
	return 0, fmt.Errorf("method %s: calling convention %#x not supported", m.Name, m.Flags)
}

// Queue holds the methods found: Put and Get always, the non-blocking ones
// when the module has them.
type Queue struct {
	Put, Get             Method
	PutNowait, GetNowait *Method
}

// Puts and Gets return the methods found of each kind.
func (q Queue) Puts() []Method { return withOptional(q.Put, q.PutNowait) }
func (q Queue) Gets() []Method { return withOptional(q.Get, q.GetNowait) }

func withOptional(m Method, o *Method) []Method {
	if o == nil {
		return []Method{m}
	}
	return []Method{m, *o}
}

// methodDefSize is sizeof(PyMethodDef) on a 64-bit target.
const methodDefSize = 32

// maxRelocs bounds the relocations read (the modules have a few
// thousand): a hostile file's sections can all cover the same bytes.
const maxRelocs = 1 << 20

var names = map[string]bool{"put": true, "get": true, "put_nowait": true, "get_nowait": true}

// FindQueue reads the _queue module at r (an x86-64 ELF shared object) and
// returns its SimpleQueue methods. A method's name must appear in exactly
// one method table entry, and every method found must sit in one table.
func FindQueue(r io.ReaderAt) (q Queue, err error) {
	defer func() {
		if p := recover(); p != nil { // debug/elf on a hostile file
			err = fmt.Errorf("reading ELF: %v", p)
		}
	}()
	img, err := load(r)
	if err != nil {
		return Queue{}, err
	}
	found := map[string][]Method{}
	slots := map[string]uint64{}
	for slot, target := range img.ptrs {
		name, ok := img.cstring(target, 16)
		if !ok || !names[name] {
			continue
		}
		fn, ok := img.ptrs[slot+8]
		if !ok {
			continue
		}
		flags, err := img.u32(slot + 16)
		if err != nil {
			continue
		}
		off, ok := elfaddr.FileOffset(img.f, fn)
		if !ok {
			continue
		}
		found[name] = append(found[name], Method{Name: name, Offset: off, Flags: flags})
		slots[name] = slot
	}
	for name, ms := range found {
		if len(ms) > 1 {
			return Queue{}, fmt.Errorf("method %q found in %d method tables: ambiguous", name, len(ms))
		}
	}
	for _, need := range []string{"put", "get"} {
		if len(found[need]) == 0 {
			return Queue{}, fmt.Errorf("no method table entry for SimpleQueue.%s", need)
		}
	}
	for name, slot := range slots {
		d := int64(slot) - int64(slots["put"])
		if d%methodDefSize != 0 || d > 16*methodDefSize || d < -16*methodDefSize {
			return Queue{}, fmt.Errorf("method %q is not in put's method table", name)
		}
	}
	q.Put, q.Get = found["put"][0], found["get"][0]
	if ms := found["put_nowait"]; len(ms) == 1 {
		q.PutNowait = &ms[0]
	}
	if ms := found["get_nowait"]; len(ms) == 1 {
		q.GetNowait = &ms[0]
	}
	for _, m := range q.Puts() {
		if _, err := m.Item(); err != nil {
			return Queue{}, err
		}
	}
	return q, nil
}

// image is the loaded view of an ELF file: its segments, and the pointers
// its relocations set (slot address → target address).
type image struct {
	f    *elf.File
	ptrs map[uint64]uint64
}

// readRelocs reads the R_X86_64_RELATIVE relocations of every SHT_RELA
// section.
func (m *image) readRelocs() error {
	n := 0
	read := map[[2]uint64]bool{} // sections' file ranges read: each once
	for _, s := range m.f.Sections {
		if s.Type != elf.SHT_RELA || read[[2]uint64{s.Offset, s.Size}] {
			continue
		}
		read[[2]uint64{s.Offset, s.Size}] = true
		if s.Entsize != 0 && s.Entsize != 24 {
			return fmt.Errorf("section %s: relocation entries of %d bytes, want 24", s.Name, s.Entsize)
		}
		sr := s.Open()
		var ent [24]byte
		for {
			if _, err := io.ReadFull(sr, ent[:]); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("reading section %s: %w", s.Name, err)
			}
			if n++; n > maxRelocs {
				return fmt.Errorf("more than %d relocations", maxRelocs)
			}
			off := binary.LittleEndian.Uint64(ent[0:])
			info := binary.LittleEndian.Uint64(ent[8:])
			addend := binary.LittleEndian.Uint64(ent[16:])
			if elf.R_X86_64(info&0xffffffff) == elf.R_X86_64_RELATIVE {
				m.ptrs[off] = addend
			}
		}
	}
	if len(m.ptrs) == 0 {
		return errors.New("no relative relocations: not a position-independent shared object")
	}
	return nil
}

// segment returns the loadable segment holding address a.
func (m *image) segment(a uint64) *elf.Prog {
	for _, p := range m.f.Progs {
		if p.Type == elf.PT_LOAD && a >= p.Vaddr && a-p.Vaddr < p.Filesz {
			return p
		}
	}
	return nil
}

func (m *image) executable(a uint64) bool {
	p := m.segment(a)
	return p != nil && p.Flags&elf.PF_X != 0
}

// read reads len(b) bytes at address a from the file.
func (m *image) read(a uint64, b []byte) error {
	p := m.segment(a)
	if p == nil || uint64(len(b)) > p.Filesz-(a-p.Vaddr) {
		return fmt.Errorf("address %#x: outside the file's segments", a)
	}
	_, err := p.ReadAt(b, int64(a-p.Vaddr))
	return err
}

func (m *image) u32(a uint64) (uint32, error) {
	var b [4]byte
	if err := m.read(a, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// cstring reads a NUL-terminated string of at most max bytes at address a.
func (m *image) cstring(a uint64, max int) (string, bool) {
	p := m.segment(a)
	if p == nil {
		return "", false
	}
	n := p.Filesz - (a - p.Vaddr)
	if n > uint64(max+1) {
		n = uint64(max + 1)
	}
	b := make([]byte, n)
	if _, err := p.ReadAt(b, int64(a-p.Vaddr)); err != nil && !errors.Is(err, io.EOF) {
		return "", false
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", false
	}
	return string(b[:i]), true
}
