package tlslib

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"

	"github.com/zerotrace/zerotrace/collector/elfaddr"
)

// OpenSSL holds the file offsets (uprobe addresses) of a file's OpenSSL
// read and write functions; 0: the file does not export it.
type OpenSSL struct {
	Write, Read     uint64 // SSL_write, SSL_read (required)
	WriteEx, ReadEx uint64 // SSL_write_ex, SSL_read_ex (OpenSSL 1.1.1 and 3.x; not BoringSSL)
	SetFd           uint64 // SSL_set_fd: a connection object gets its socket (optional)
}

// ErrNoSymbols: the file exports no SSL_write/SSL_read.
var ErrNoSymbols = errors.New("no SSL_write/SSL_read exported")

// FindOpenSSL reads the ELF file at r (x86-64, its dynamic symbol table:
// the functions a library or executable exports) and returns the functions'
// offsets, or ErrNoSymbols when it exports neither SSL_write nor SSL_read.
func FindOpenSSL(r io.ReaderAt) (o OpenSSL, err error) {
	defer func() {
		if p := recover(); p != nil { // debug/elf on a hostile file
			o, err = OpenSSL{}, fmt.Errorf("reading ELF: %v", p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return OpenSSL{}, fmt.Errorf("reading ELF: %w", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return OpenSSL{}, fmt.Errorf("not an x86-64 ELF64 file (%v %v)", f.Class, f.Machine)
	}
	syms, err := f.DynamicSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return OpenSSL{}, fmt.Errorf("reading dynamic symbols: %w", err)
	}
	want := map[string]*uint64{"SSL_write": &o.Write, "SSL_read": &o.Read, "SSL_write_ex": &o.WriteEx, "SSL_read_ex": &o.ReadEx,
		"SSL_set_fd": &o.SetFd}
	for _, s := range syms {
		dst, ok := want[s.Name]
		if !ok || elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 || s.Section == elf.SHN_UNDEF {
			continue
		}
		off, ok := elfaddr.FileOffset(f, s.Value)
		if !ok {
			return OpenSSL{}, fmt.Errorf("%s at %#x: outside the file's code", s.Name, s.Value)
		}
		*dst = off
	}
	if o.Write == 0 || o.Read == 0 {
		return OpenSSL{}, ErrNoSymbols
	}
	return o, nil
}
