package gotls

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/zerotrace/zerotrace/collector/elfaddr"
	"golang.org/x/arch/x86/x86asm"
)

// The functions the uprobes attach to.
const (
	WriteSymbol = "crypto/tls.(*Conn).Write"
	ReadSymbol  = "crypto/tls.(*Conn).Read"
)

// maxFuncSize bounds the bytes disassembled per function: Write and Read
// are a few hundred bytes; a larger size is a damaged table.
const maxFuncSize = 64 << 10

var (
	// ErrNotGo: the file carries no Go build information.
	ErrNotGo = errors.New("not a Go executable")
	// ErrNoTLS: a Go executable that does not link crypto/tls (the common
	// case, not a failure).
	ErrNoTLS = errors.New("crypto/tls not linked")
	// ErrUnknownLayout: a Go version whose calling convention or struct
	// layout this package does not know.
	ErrUnknownLayout = errors.New("unknown crypto/tls layout")
)

// Func is one probed function, as file offsets (what a uprobe attaches to).
type Func struct {
	Entry   uint64   // file offset of the first instruction
	Returns []uint64 // file offsets of its RET instructions, ascending
	Size    uint64   // bytes of code
}

// Info is what the uprobes of one executable need.
type Info struct {
	GoVersion string // as the build information says, e.g. "go1.26.8"
	Stripped  bool   // symbols came from the pclntab
	Write     Func
	Read      Func
	Layout    Layout
}

// Inspect reads the executable at path.
func Inspect(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening executable: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads an executable's bytes.
func Parse(r io.ReaderAt) (info *Info, err error) {
	// debug/gosym trusts its table more than untrusted bytes deserve.
	defer func() {
		if p := recover(); p != nil {
			info, err = nil, fmt.Errorf("reading symbols: damaged table (%v)", p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("reading ELF: %w", err)
	}
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w: machine %v (amd64 only)", ErrUnknownLayout, f.Machine)
	}
	bi, err := buildinfo.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotGo, err)
	}
	info = &Info{GoVersion: bi.GoVersion}
	if info.Layout, err = LayoutFor(bi.GoVersion); err != nil {
		return nil, err
	}
	if raw, in, ok := recordOffsets(f); ok {
		info.Layout.RawInput, info.Layout.Input = raw, in
	}
	syms, stripped, err := lookup(f, WriteSymbol, ReadSymbol)
	if err != nil {
		return nil, err
	}
	info.Stripped = stripped
	if info.Write, err = funcAt(f, syms[0], WriteSymbol); err != nil {
		return nil, err
	}
	if info.Read, err = funcAt(f, syms[1], ReadSymbol); err != nil {
		return nil, err
	}
	return info, nil
}

// span is a function's virtual address range.
type span struct{ start, end uint64 }

// lookup finds names in the symbol table, or in the pclntab when the
// table is gone; stripped tells which.
func lookup(f *elf.File, names ...string) (out []span, stripped bool, err error) {
	syms, err := f.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, false, fmt.Errorf("reading symbol table: %w", err)
	}
	if len(syms) > 0 {
		out = make([]span, len(names))
		found := 0
		for _, s := range syms {
			for i, n := range names {
				if s.Name == n && out[i].end == 0 && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
					out[i] = span{s.Value, s.Value + s.Size}
					found++
				}
			}
		}
		if found == len(names) {
			return out, false, nil
		}
		// A symbol table without them: the pclntab still says.
	}
	out, err = fromPclntab(f, names)
	return out, true, err
}

// fromPclntab finds names in .gopclntab.
func fromPclntab(f *elf.File, names []string) ([]span, error) {
	sec, text := f.Section(".gopclntab"), f.Section(".text")
	if sec == nil || text == nil {
		return nil, fmt.Errorf("%w: no symbol table and no .gopclntab", ErrNoTLS)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .gopclntab: %w", err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, fmt.Errorf("reading .gopclntab: %w", err)
	}
	out := make([]span, len(names))
	for i, n := range names {
		fn := tab.LookupFunc(n)
		if fn == nil {
			return nil, fmt.Errorf("%w: no %s", ErrNoTLS, n)
		}
		out[i] = span{fn.Entry, fn.End}
	}
	return out, nil
}

// funcAt disassembles the function at s and returns its file offsets.
func funcAt(f *elf.File, s span, name string) (Func, error) {
	if s.end <= s.start || s.end-s.start > maxFuncSize {
		return Func{}, fmt.Errorf("%s: size %d out of range", name, int64(s.end-s.start))
	}
	size := s.end - s.start
	code, off, ok := elfaddr.Code(f, s.start, size)
	if !ok {
		return Func{}, fmt.Errorf("%s: %d bytes at %#x in no executable segment of the file", name, size, s.start)
	}
	rets, err := Returns(code)
	if err != nil {
		return Func{}, fmt.Errorf("%s: %w", name, err)
	}
	fn := Func{Entry: off, Size: size, Returns: make([]uint64, len(rets))}
	for i, r := range rets {
		fn.Returns[i] = off + r
	}
	return fn, nil
}

// Returns disassembles amd64 code and returns the offsets of its RET
// instructions. Go pads functions with INT3, which decodes; any byte that
// does not decode is an error (a wrong address would put uprobes in the
// middle of instructions).
func Returns(code []byte) ([]uint64, error) {
	var rets []uint64
	for pc := 0; pc < len(code); {
		in, err := x86asm.Decode(code[pc:], 64)
		if err == nil && in.Op == 0 {
			err = errors.New("truncated instruction") // x86asm reports these as Op 0
		}
		if err != nil {
			return nil, fmt.Errorf("disassembling at +%#x: %w", pc, err)
		}
		if in.Op == x86asm.RET {
			rets = append(rets, uint64(pc))
		}
		pc += in.Len
	}
	if len(rets) == 0 {
		return nil, errors.New("no RET instruction")
	}
	return rets, nil
}

// goMinor returns the minor version of "go1.N[.P|rcX|betaX][ extra]", or
// an error.
func goMinor(v string) (int, error) {
	rest, ok := strings.CutPrefix(v, "go1.")
	if !ok {
		return 0, fmt.Errorf("%w: Go version %q", ErrUnknownLayout, v)
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0, fmt.Errorf("%w: Go version %q", ErrUnknownLayout, v)
	}
	return n, nil
}

// recordOffsets reads the offsets of tls.Conn.rawInput and input from the
// binary's DWARF, if it has any.
func recordOffsets(f *elf.File) (raw, in uint64, ok bool) {
	d, err := typeDWARF(f)
	if err != nil {
		return 0, 0, false
	}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return 0, 0, false
		}
		if e.Tag != dwarf.TagStructType {
			continue
		}
		if name, _ := e.Val(dwarf.AttrName).(string); name != "crypto/tls.Conn" {
			r.SkipChildren()
			continue
		}
		t, err := d.Type(e.Offset)
		st, isStruct := t.(*dwarf.StructType)
		if err != nil || !isStruct {
			return 0, 0, false
		}
		for _, fl := range st.Field {
			switch fl.Name {
			case "rawInput":
				raw = uint64(fl.ByteOffset)
			case "input":
				in = uint64(fl.ByteOffset)
			}
		}
		return raw, in, raw > 0 && in > 0 && raw < 1<<16 && in < 1<<16
	}
}

// typeDWARF is f's DWARF with only the sections a walk of its entries and
// types reads: entries, abbreviations, strings and addresses. f.DWARF()
// also decompresses the line tables, frames, location and range lists:
// for the collector's own 79 MB binary 73 MB allocated and 0.28 s of CPU
// against 33 MB and 0.13 s here (docs/capture.md, "Issue 29, fifteenth
// round"), once per Go executable the collector sees. Binaries whose
// sections are not under their .debug_ names (.zdebug_, from Go before
// 1.11) take the whole f.DWARF().
func typeDWARF(f *elf.File) (*dwarf.Data, error) {
	sec := func(name string) ([]byte, error) {
		s := f.Section(name)
		if s == nil {
			return nil, nil
		}
		b, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return b, nil
	}
	if f.Section(".debug_info") == nil || f.Section(".debug_abbrev") == nil {
		return f.DWARF()
	}
	var data [3][]byte
	for i, name := range []string{".debug_abbrev", ".debug_info", ".debug_str"} {
		b, err := sec(name)
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	d, err := dwarf.New(data[0], nil, nil, data[1], nil, nil, nil, data[2])
	if err != nil {
		return nil, fmt.Errorf("reading DWARF: %w", err)
	}
	// DWARF 5: attributes given as indexes into these.
	for _, name := range []string{".debug_addr", ".debug_str_offsets", ".debug_line_str"} {
		b, err := sec(name)
		if err != nil {
			return nil, err
		}
		if b != nil {
			if err := d.AddSection(name, b); err != nil {
				return nil, fmt.Errorf("reading DWARF: %w", err)
			}
		}
	}
	return d, nil
}
