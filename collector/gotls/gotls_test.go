package gotls

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestReturns: annotated amd64 code; the RET offsets are the annotations.
func TestReturns(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want []uint64
		err  string
	}{
		{"ret only", []byte{0xc3}, []uint64{0}, ""},
		{"epilogue", []byte{
			0x48, 0x83, 0xc4, 0x28, // add rsp, 0x28
			0x5d,       // pop rbp
			0xc3,       // ret            <- +5
			0xcc, 0xcc, // int3 padding
		}, []uint64{5}, ""},
		{"two returns", []byte{
			0x48, 0x85, 0xc0, // test rax, rax
			0x74, 0x01, // je +1
			0xc3,       // ret  <- +5
			0x31, 0xc0, // xor eax, eax
			0xc3, // ret  <- +8
		}, []uint64{5, 8}, ""},
		{"c3 inside an immediate is no ret", []byte{
			0xb8, 0xc3, 0x00, 0x00, 0x00, // mov eax, 0xc3
			0xc3, // ret  <- +5
		}, []uint64{5}, ""},
		{"no ret", []byte{0x90, 0x90}, nil, "no RET"},
		{"truncated instruction", []byte{0xc3, 0xb8, 0xc3}, nil, "disassembling at +0x1"},
	} {
		got, err := Returns(tc.code)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestLayoutFor(t *testing.T) {
	for v, want := range map[string]string{
		"go1.17":            "",
		"go1.21.13":         "",
		"go1.26.8":          "",
		"go1.24rc1":         "",
		"go1.22.0 X:boring": "",
		"go1.16.15":         "predates the register ABI",
		"go1.27.0":          "newer than the last version checked",
		"devel +abc":        "Go version",
		"go1.":              "Go version",
		"go2.0":             "Go version",
	} {
		l, err := LayoutFor(v)
		if want == "" {
			if err != nil || l.FDSysfd != 16 || l.ConnData != 8 {
				t.Errorf("%s: %+v %v", v, l, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnknownLayout) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want ErrUnknownLayout with %q", v, err, want)
		}
	}
}

// TestParseBadInput: bytes that are no usable executable give a clear
// error, never a panic.
func TestParseBadInput(t *testing.T) {
	hdr := elfHeader(elf.EM_X86_64)
	arm := elfHeader(elf.EM_AARCH64)
	for _, tc := range []struct {
		name string
		data []byte
		is   error
		err  string
	}{
		{"empty", nil, nil, "reading ELF"},
		{"not ELF", []byte("#!/bin/sh\necho hi\n"), nil, "reading ELF"},
		{"arm64", arm, ErrUnknownLayout, "amd64 only"},
		{"ELF without Go build info", hdr, ErrNotGo, "not a Go executable"},
	} {
		_, err := Parse(bytes.NewReader(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.err) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
}

// elfHeader is a 64-byte ELF64 little-endian executable header with no
// program or section headers.
func elfHeader(m elf.Machine) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	h[16] = byte(elf.ET_EXEC)
	h[18] = byte(m)
	h[19] = byte(m >> 8)
	h[20] = 1  // version
	h[52] = 64 // ehsize
	h[54] = 56 // phentsize
	h[58] = 64 // shentsize
	return h
}

var (
	buildOnce sync.Once
	built     map[string]string
	buildErr  error
)

// binaries builds testdata/tlsprog normally and stripped.
func binaries(t testing.TB) map[string]string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gotls")
		if err != nil {
			buildErr = err
			return
		}
		built = map[string]string{"full": filepath.Join(dir, "full"), "stripped": filepath.Join(dir, "stripped")}
		for name, flags := range map[string]string{"full": "", "stripped": "-s -w"} {
			out, err := exec.Command("go", "build", "-ldflags="+flags, "-o", built[name], "./testdata/tlsprog").CombinedOutput()
			if err != nil {
				buildErr = errors.New(string(out))
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("building test program: %v", buildErr)
	}
	return built
}

// TestInspectRealBinary: the offsets of a binary the Go toolchain built,
// against the toolchain's own disassembler (go tool objdump), for the
// symbol table and for the pclntab of the stripped build.
func TestInspectRealBinary(t *testing.T) {
	bins := binaries(t)
	want := map[string][]uint64{}
	for _, sym := range []string{WriteSymbol, ReadSymbol} {
		want[sym] = objdumpRets(t, bins["full"], sym)
	}
	for name, path := range bins {
		info, err := Inspect(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.Stripped != (name == "stripped") || info.Layout.RawInput == 0 {
			t.Errorf("%s: Stripped %v", name, info.Stripped)
		}
		f, _ := elf.Open(path)
		for sym, fn := range map[string]Func{WriteSymbol: info.Write, ReadSymbol: info.Read} {
			got := make([]uint64, len(fn.Returns))
			for i, r := range fn.Returns {
				got[i] = toAddr(f, r)
			}
			if !slices.Equal(got, want[sym][1:]) || toAddr(f, fn.Entry) != want[sym][0] {
				t.Errorf("%s %s: entry %#x returns %#x, objdump says %#x", name, sym, toAddr(f, fn.Entry), got, want[sym])
			}
		}
		f.Close()
	}
}

// objdumpRets returns the address of sym's first instruction, then those
// of its RETs, from go tool objdump.
func objdumpRets(t *testing.T, bin, sym string) []uint64 {
	out, err := exec.Command("go", "tool", "objdump", "-s", "^"+regexp.QuoteMeta(sym)+"$", bin).Output()
	if err != nil {
		t.Fatalf("objdump: %v", err)
	}
	var addrs []uint64
	line := regexp.MustCompile(`^\s+\S+:\d+\s+0x([0-9a-f]+)\s+[0-9a-f]+\s+(\S+)`)
	for _, l := range strings.Split(string(out), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a, _ := strconv.ParseUint(m[1], 16, 64)
		if len(addrs) == 0 || m[2] == "RET" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) < 2 {
		t.Fatalf("objdump of %s: no RET in\n%s", sym, out)
	}
	return addrs
}

func toAddr(f *elf.File, off uint64) uint64 {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && off >= p.Off && off < p.Off+p.Filesz {
			return off - p.Off + p.Vaddr
		}
	}
	return 0
}

// TestLayoutMatchesDWARF: the known layout against the compiler's DWARF.
func TestLayoutMatchesDWARF(t *testing.T) {
	bin := binaries(t)["full"]
	info, err := Inspect(bin)
	if err != nil {
		t.Fatal(err)
	}
	offs := structFields(t, bin, "bytes.Buffer", "bytes.Reader", "crypto/tls.Conn", "net.conn", "net.TCPConn", "net.netFD", "internal/poll.FD", "runtime.iface")
	l := info.Layout
	// The table's offsets for this version (what a stripped binary gets).
	table, err := LayoutFor(info.GoVersion)
	if err != nil || table.RawInput == 0 || l.RawInput != table.RawInput || l.Input != table.Input {
		t.Fatalf("table %+v %v, from DWARF %+v", table, err, l)
	}
	for k, v := range map[string]int64{
		"crypto/tls.Conn.conn": 0, "runtime.iface.data": int64(l.ConnData), "net.TCPConn.conn": 0,
		"net.conn.fd": int64(l.ConnFD), "net.netFD.pfd": 0, "internal/poll.FD.Sysfd": int64(l.FDSysfd),
		"crypto/tls.Conn.rawInput": int64(table.RawInput), "crypto/tls.Conn.input": int64(table.Input),
		"bytes.Buffer.buf": 0, "bytes.Buffer.off": BufferOff, "bytes.Reader.s": 0, "bytes.Reader.i": ReaderI,
	} {
		if got, ok := offs[k]; !ok || got != v {
			t.Errorf("%s: DWARF offset %d (found %v), layout says %d", k, got, ok, v)
		}
	}
}

// TestRecordOffsetsFromDWARF: tls.Conn's rawInput and input as
// recordOffsets reads them (typeDWARF: some of the DWARF sections) are the
// offsets of the binary's whole DWARF (f.DWARF()); the stripped build has
// none. Inspect cannot tell the two apart for go1.26, whose table holds the
// same offsets.
func TestRecordOffsetsFromDWARF(t *testing.T) {
	bins := binaries(t)
	want := structFields(t, bins["full"], "crypto/tls.Conn")
	for name, bin := range bins {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		raw, in, ok := recordOffsets(f)
		f.Close()
		if name == "stripped" {
			if ok {
				t.Errorf("stripped: rawInput %d, input %d from no DWARF", raw, in)
			}
			continue
		}
		if !ok || want["crypto/tls.Conn.rawInput"] == 0 || int64(raw) != want["crypto/tls.Conn.rawInput"] || int64(in) != want["crypto/tls.Conn.input"] {
			t.Errorf("%s: rawInput %d, input %d, ok %v; the whole DWARF says %d, %d", name, raw, in, ok, want["crypto/tls.Conn.rawInput"], want["crypto/tls.Conn.input"])
		}
	}
}

// structFields reads the field offsets ("Type.field") of the named structs
// from the whole DWARF of bin (f.DWARF()).
func structFields(t *testing.T, bin string, names ...string) map[string]int64 {
	f, _ := elf.Open(bin)
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		t.Fatal(err)
	}
	offs := map[string]int64{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if !slices.Contains(names, name) {
			r.SkipChildren()
			continue
		}
		typ, err := d.Type(e.Offset)
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range typ.(*dwarf.StructType).Field {
			offs[name+"."+fl.Name] = fl.ByteOffset
		}
		r.SkipChildren()
	}
	return offs
}

// BenchmarkInspectDWARF: the build with DWARF, whose tls.Conn offsets are
// read from it.
func BenchmarkInspectDWARF(b *testing.B) {
	bin := binaries(b)["full"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(bin); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReturns(b *testing.B) {
	code := bytes.Repeat([]byte{0x48, 0x83, 0xc4, 0x28, 0x5d, 0xc3}, 300)
	b.SetBytes(int64(len(code)))
	for b.Loop() {
		Returns(code)
	}
}

// FuzzParse: any bytes give an Info or an error, never a panic; an Info's
// offsets lie inside the input.
func FuzzParse(f *testing.F) {
	f.Add(elfHeader(elf.EM_X86_64))
	f.Add([]byte{0x7f, 'E', 'L', 'F'})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, fn := range []Func{info.Write, info.Read} {
			if fn.Entry+fn.Size > uint64(len(data)) || len(fn.Returns) == 0 {
				t.Fatalf("offsets outside the input: %+v (%d bytes)", fn, len(data))
			}
		}
	})
}

// TestParseUnknownVersion: a real binary whose build information names
// Go 1.99 (the version's bytes patched) is refused, not guessed.
func TestParseUnknownVersion(t *testing.T) {
	b, err := os.ReadFile(binaries(t)["stripped"])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("\xff Go buildinf:"))
	if i < 0 || !bytes.HasPrefix(b[i+33:], []byte("go1.")) {
		t.Fatal("no inline build information")
	}
	copy(b[i+33:], "go1.99")
	_, err = Parse(bytes.NewReader(b))
	if !errors.Is(err, ErrUnknownLayout) || !strings.Contains(err.Error(), "go1.99") {
		t.Fatalf("err %v, want ErrUnknownLayout naming go1.99", err)
	}
	// Its Write without the symbol table and pclntab: ErrNoTLS.
	copy(b[i+33:], "go1.26")
	j := bytes.Index(b, []byte(WriteSymbol))
	if j < 0 {
		t.Fatal("no Write in the pclntab")
	}
	b[j+len(WriteSymbol)-1] = 'X'
	if _, err = Parse(bytes.NewReader(b)); !errors.Is(err, ErrNoTLS) {
		t.Fatalf("err %v, want ErrNoTLS", err)
	}
}
