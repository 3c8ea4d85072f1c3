package tlslib

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/collector/probesite"
	"github.com/zerotrace/zerotrace/collector/procmaps"
	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestLibraries: libssl files of a memory map, each once, deleted ones
// marked; NSS's libssl3.so and other libraries are not OpenSSL's.
func TestLibraries(t *testing.T) {
	maps := `55d0c6a00000-55d0c6a2a000 r--p 00000000 08:01 1311 /usr/bin/python3.11
7f1c3c600000-7f1c3c61c000 r--p 00000000 08:01 2247 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c3c61c000-7f1c3c677000 r-xp 0001c000 08:01 2247 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c3c800000-7f1c3c810000 r-xp 00000000 08:01 2250 /usr/lib/x86_64-linux-gnu/libssl3.so
7f1c3c900000-7f1c3c910000 r-xp 00000000 08:01 2251 /opt/app/lib/libssl.so.1.1 (deleted)
7f1c3ca00000-7f1c3ca10000 r-xp 00000000 08:01 2252 /opt/app/lib/libssl.so
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]
`
	got, err := Libraries(strings.NewReader(maps))
	want := []procmaps.File{{Path: "/usr/lib/x86_64-linux-gnu/libssl.so.3"}, {Path: "/opt/app/lib/libssl.so.1.1", Deleted: true}, {Path: "/opt/app/lib/libssl.so"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v, want %+v", got, err, want)
	}
}

// TestFindOpenSSL: Debian's libssl.so.3 exports the four functions and
// SSL_set_fd, node the two (at least), an executable without OpenSSL none;
// bad input is an error.
func TestFindOpenSSL(t *testing.T) {
	for _, tc := range []struct {
		path  string
		ex    bool // the _ex pair expected
		whole bool // WholeWrites: Debian 12's OpenSSL 3.0; node's has no symbol versions
	}{{"/usr/lib/x86_64-linux-gnu/libssl.so.3", true, true}, {"/usr/bin/node", false, false}} {
		f, err := os.Open(tc.path)
		if err != nil {
			t.Fatalf("%s: %v (installed by .ci/install)", tc.path, err)
		}
		o, err := FindOpenSSL(f)
		f.Close()
		if err != nil || o.Write == 0 || o.Read == 0 || o.Write == o.Read || (tc.ex && (o.WriteEx == 0 || o.ReadEx == 0 || o.SetFd == 0)) {
			t.Errorf("%s: %+v %v", tc.path, o, err)
		}
		if o.WholeWrites != tc.whole {
			t.Errorf("%s: WholeWrites %v, want %v", tc.path, o.WholeWrites, tc.whole)
		}
	}
	f, err := os.Open("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := FindOpenSSL(f); !errors.Is(err, ErrNoSymbols) {
		t.Errorf("/bin/true: %v, want ErrNoSymbols", err)
	}
	if _, err := FindOpenSSL(bytes.NewReader([]byte("\x7fELF garbage"))); err == nil || errors.Is(err, ErrNoSymbols) {
		t.Errorf("garbage: %v, want a reading error", err)
	}
}

// TestWholeWrites: a small SSL_write_ex's count is its length in OpenSSL
// 1.1.0 to 3.1, known by the version names the library defines (readelf
// -V); 3.2 on, other names and no names are not known.
func TestWholeWrites(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  bool
	}{
		{[]string{"libssl.so.3", "OPENSSL_3.0.0", "OPENSSL_3.0.3"}, true},                     // Debian 12's 3.0.x (the first: the file's own name)
		{[]string{"libssl.so.1.1", "OPENSSL_1_1_0", "OPENSSL_1_1_0d", "OPENSSL_1_1_1"}, true}, // 1.1.1
		{[]string{"OPENSSL_1_1_1a", "OPENSSL_3.0.0", "OPENSSL_3.1.0"}, true},                  // 3.1
		{[]string{"OPENSSL_3.0.0", "OPENSSL_3.2.0"}, false},                                   // 3.2: split_send_fragment cuts writes
		{[]string{"OPENSSL_3.0.0", "OPENSSL_3.5.0"}, false},
		{[]string{"OPENSSL_4.0.0"}, false},
		{[]string{"OPENSSL_3.10.0"}, false}, // 3.10, not 3.1
		{[]string{"OPENSSL_3"}, false},      // no minor
		{[]string{"OPENSSL_1_0_2"}, false},  // before 1.1.0: no SSL_write_ex, not known
		{[]string{"OPENSSL_3.0.0", "OPENSSL_X"}, false},
		{[]string{"libssl.so.52", "LIBRESSL_3.8"}, false}, // no OpenSSL version
		{nil, false}, // an executable (node): none
	} {
		if got := wholeWrites(tc.names); got != tc.want {
			t.Errorf("wholeWrites(%q) = %v, want %v", tc.names, got, tc.want)
		}
	}
}

// FuzzFindOpenSSL: any bytes give a result or an error, never a panic; a
// result has both required functions, and every function it gives lies in
// the file (the corpus' past-the-file-end: an executable segment moved past
// the file's end, where the functions' offsets would be).
func FuzzFindOpenSSL(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b)
	}
	if b, err := os.ReadFile("/usr/lib/x86_64-linux-gnu/libssl.so.3"); err == nil {
		f.Add(b) // exports the functions and defines symbol versions (WholeWrites)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := FindOpenSSL(bytes.NewReader(b))
		if err != nil {
			return
		}
		if o.Write == 0 || o.Read == 0 {
			t.Fatalf("no error without both functions: %+v", o)
		}
		if o.WholeWrites && o.WriteEx == 0 {
			t.Fatalf("WholeWrites without SSL_write_ex: %+v", o)
		}
		for _, off := range []uint64{o.Write, o.Read, o.WriteEx, o.ReadEx, o.SetFd} {
			if off >= uint64(len(b)) {
				t.Fatalf("function at %#x, past the file's end (%d bytes): %+v", off, len(b), o)
			}
		}
	})
}

func BenchmarkFindOpenSSL(b *testing.B) {
	data, err := os.ReadFile("/usr/lib/x86_64-linux-gnu/libssl.so.3")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := FindOpenSSL(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFindOpenSSLSites: Debian 12's libssl gets probe sites for SSL_read
// and SSL_write (both begin with sub $0x18,%rsp, which the kernel
// single-steps) and none for the _ex pair (no branch after their call);
// objdump, not the decoder under test, says what lies at each site.
func TestFindOpenSSLSites(t *testing.T) {
	testenv.RequireBinaries(t, "objdump")
	const lib = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
	f, err := os.Open(lib)
	if err != nil {
		t.Fatalf("%s: %v (installed by .ci/install)", lib, err)
	}
	o, err := FindOpenSSL(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if o.WriteExSites != (probesite.Sites{}) || o.ReadExSites != (probesite.Sites{}) {
		t.Errorf("_ex sites %#x %#x, want none", o.WriteExSites, o.ReadExSites)
	}
	// objdump's line for the instruction at a file offset (the text
	// segment's addresses are its file offsets in this library).
	insn := func(at uint64) string {
		out, err := exec.Command("objdump", "-d", "--no-show-raw-insn", fmt.Sprintf("--start-address=%#x", at),
			fmt.Sprintf("--stop-address=%#x", at+16), lib).Output()
		if err != nil {
			t.Fatalf("objdump: %v", err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), fmt.Sprintf("%x:", at)) {
				return strings.Join(strings.Fields(l)[1:], " ")
			}
		}
		t.Fatalf("objdump shows no instruction at %#x:\n%s", at, out)
		return ""
	}
	for _, fn := range []struct {
		name  string
		start uint64
		s     probesite.Sites
	}{{"SSL_read", o.Read, o.ReadSites}, {"SSL_write", o.Write, o.WriteSites}} {
		if fn.s.Entry <= fn.start || fn.s.Return <= fn.s.Entry || fn.s.Return > fn.start+0x100 {
			t.Errorf("%s at %#x: sites %#x", fn.name, fn.start, fn.s)
			continue
		}
		first, e, r := insn(fn.start), insn(fn.s.Entry), insn(fn.s.Return)
		t.Logf("%s: %q; entry site %q, return site %q", fn.name, first, e, r)
		if !strings.HasPrefix(first, "sub ") || !strings.HasPrefix(e, "call ") || !strings.HasPrefix(r, "j") {
			t.Errorf("%s: first %q, entry site %q, return site %q; want sub, call, a jump", fn.name, first, e, r)
		}
	}
}
