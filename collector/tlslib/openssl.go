package tlslib

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/zerotrace/zerotrace/collector/elfaddr"
	"github.com/zerotrace/zerotrace/collector/probesite"
)

// OpenSSL holds the file offsets (uprobe addresses) of a file's OpenSSL
// read and write functions; 0: the file does not export it.
type OpenSSL struct {
	Write, Read     uint64 // SSL_write, SSL_read (required)
	WriteEx, ReadEx uint64 // SSL_write_ex, SSL_read_ex (OpenSSL 1.1.1 and 3.x; not BoringSSL)
	SetFd           uint64 // SSL_set_fd: a connection object gets its socket (optional)
	// WholeWrites: a successful SSL_write_ex of at most 512 bytes wrote
	// all of them (OpenSSL 1.1.0 to 3.1, by the file's symbol versions:
	// wholeWrites), so the probes take its count from its argument
	// (bpf/socket/openssl.h ossl_write_exw).
	WholeWrites bool
	// WriteSites, ReadSites, WriteExSites, ReadExSites: where the entry
	// and return programs of SSL_write, SSL_read, SSL_write_ex and
	// SSL_read_ex go so that the kernel single-steps none of the
	// function's instructions (collector/probesite), as plain uprobes;
	// zero: a uprobe at the function's entry and a uretprobe.
	WriteSites, ReadSites, WriteExSites, ReadExSites probesite.Sites
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
	// Each function's offset, and its probe sites with the argument
	// registers its entry program reads (bpf/socket/openssl.h; SSL_set_fd
	// has only an entry probe: no sites).
	want := map[string]struct {
		off   *uint64
		sites *probesite.Sites
		args  probesite.Args
	}{
		"SSL_write":    {&o.Write, &o.WriteSites, probesite.RDI | probesite.RSI | probesite.EDX32},
		"SSL_read":     {&o.Read, &o.ReadSites, probesite.RDI | probesite.RSI},
		"SSL_write_ex": {&o.WriteEx, &o.WriteExSites, probesite.RDI | probesite.RSI | probesite.RDX | probesite.RCX},
		"SSL_read_ex":  {&o.ReadEx, &o.ReadExSites, probesite.RDI | probesite.RSI | probesite.RCX},
		"SSL_set_fd":   {&o.SetFd, nil, 0},
	}
	for _, s := range syms {
		w, ok := want[s.Name]
		if !ok || elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 || s.Section == elf.SHN_UNDEF {
			continue
		}
		off, ok := elfaddr.FileOffset(f, s.Value)
		if !ok {
			return OpenSSL{}, fmt.Errorf("%s at %#x: outside the file's code", s.Name, s.Value)
		}
		*w.off = off
		if w.sites != nil {
			*w.sites = findSites(r, off, s.Size, w.args)
		}
	}
	if o.Write == 0 || o.Read == 0 {
		return OpenSSL{}, ErrNoSymbols
	}
	if vs, err := f.DynamicVersions(); err == nil && o.WriteEx != 0 {
		names := make([]string, len(vs))
		for i, v := range vs {
			names[i] = v.Name
		}
		o.WholeWrites = wholeWrites(names)
	}
	return o, nil
}

// findSites reads the size bytes of code at file offset off and returns
// its probe sites, or none (collector/probesite says why; a function
// without them keeps its entry uprobe and uretprobe).
func findSites(r io.ReaderAt, off, size uint64, args probesite.Args) probesite.Sites {
	if size == 0 || size > probesite.MaxCode {
		return probesite.Sites{}
	}
	code := make([]byte, size)
	if _, err := r.ReadAt(code, int64(off)); err != nil {
		return probesite.Sites{}
	}
	s, err := probesite.Find(code, off, args)
	if err != nil {
		return probesite.Sites{}
	}
	return s
}

// wholeWrites reports whether a libssl that defines the symbol versions
// names is OpenSSL 1.1.0 to 3.1: at least one OPENSSL_ version, none
// newer than 3.1 (each release defines its own for the functions it
// adds: OPENSSL_1_1_0, OPENSSL_1_1_1, OPENSSL_3.0.0, and 3.2's
// OPENSSL_3.2.0 on). There a write is cut into records only at
// max_send_fragment, at least 512 bytes, so an SSL_write_ex of at most 512
// bytes makes one record and returns success only once all of it is
// written; from 3.2 on it is also cut at split_send_fragment, which an
// application may set to any size, and with SSL_MODE_ENABLE_PARTIAL_WRITE
// a success may then have written part of it. A file without versions (an
// executable: node, LibreSSL) is not known to be either: false.
func wholeWrites(names []string) bool {
	seen := false
	for _, n := range names {
		v, ok := strings.CutPrefix(n, "OPENSSL_")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, "1_1_0") || strings.HasPrefix(v, "1_1_1") {
			seen = true
			continue
		}
		major, rest, ok := strings.Cut(v, ".")
		minor, _, _ := strings.Cut(rest, ".")
		if !ok || major != "3" || (minor != "0" && minor != "1") {
			return false // 3.2 on, or a name not known
		}
		seen = true
	}
	return seen
}
