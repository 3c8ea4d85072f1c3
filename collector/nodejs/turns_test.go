package nodejs

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/collector/elfaddr"
	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestFindTurns reads the node executable on this machine (Debian's
// nodejs 20) and checks every offset against nm's view of its symbols; a
// file without them, or not ELF, gives an error.
func TestFindTurns(t *testing.T) {
	path, err := exec.LookPath("node")
	if err != nil {
		testenv.Skip(t, "node not installed: %v", err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	turns, err := FindTurns(f)
	if err != nil {
		t.Fatal(err)
	}
	ef, _ := elf.NewFile(f)
	syms, _ := ef.Symbols()
	want := map[string]uint64{}
	for _, s := range syms {
		for name, p := range prefixes {
			if strings.HasPrefix(s.Name, p) {
				off, _ := elfaddr.FileOffset(ef, s.Value)
				want[name] = off
			}
		}
	}
	got := map[string]uint64{"ScopeWrap": turns.ScopeWrap, "ScopeEnv": turns.ScopeEnv, "Close": turns.Close, "MakeCallback": turns.MakeCallback}
	for name, off := range got {
		if off == 0 || off != want[name] {
			t.Errorf("%s at %#x, want %#x", name, off, want[name])
		}
	}
	for name, b := range map[string][]byte{"not ELF": []byte("#!/bin/sh\n"), "empty": nil} {
		if _, err := FindTurns(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// An ELF file without node's functions: the Go test binary itself.
	self, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if _, err := FindTurns(self); err == nil || !strings.Contains(err.Error(), "0 functions") {
		t.Errorf("a binary without them: %v", err)
	}
}

// fakeNode is a C file defining functions with node's mangled names, and a
// second constructor overload (a parameter added at the end, as a later
// Node.js may) that the prefix must not count twice when it shares the
// address of the first.
const fakeNode = `
void _ZN4node21InternalCallbackScopeC1EPNS_9AsyncWrapEi(void) {}
void _ZN4node21InternalCallbackScopeC1EPNS_11EnvironmentEN2v85LocalINS3_6ObjectEEERKNS_13async_contextEi(void) {}
void _ZN4node21InternalCallbackScope5CloseEv(void) {}
void _ZN4node9AsyncWrap12MakeCallbackEN2v85LocalINS1_8FunctionEEEiPNS2_INS1_5ValueEEE(void) {}
void other(void) {}
`

// buildFake compiles src (clang-14, as the BPF programs are built) into a
// shared object and returns its bytes.
func buildFake(t testing.TB, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	c, so := filepath.Join(dir, "node.c"), filepath.Join(dir, "node.so")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("clang-14", "-O0", "-shared", "-fPIC", "-o", so, c).CombinedOutput(); err != nil {
		testenv.Skip(t, "clang-14: %v: %s", err, out)
	}
	b, err := os.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFindTurnsTable: a shared object with the four functions gives their
// offsets (checked against the file's symbols); one missing, or a prefix
// naming two functions at two addresses, is an error naming it.
func TestFindTurnsTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		r8      bool // the Environment constructor's async_context& in R8
		wantErr string
	}{
		{name: "all four", src: fakeNode},
		{name: "Node.js 22's constructor (std::variant object)", src: strings.Replace(fakeNode, "EN2v85LocalINS3_6ObjectEEERKNS_13async_contextEi",
			"ESt7variantIJN2v85LocalINS4_6ObjectEEEPS7_EERKNS_13async_contextEiNS5_INS4_5ValueEEE", 1), r8: true},
		{name: "Close missing", src: strings.Replace(fakeNode, "5CloseEv", "5CloneEv", 1), wantErr: "Close"},
		{name: "two MakeCallbacks", src: fakeNode + "void _ZN4node9AsyncWrap12MakeCallbackEN2v85LocalINS1_8FunctionEEEiPS4_(void) {}\n",
			wantErr: "MakeCallback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := buildFake(t, tc.src)
			turns, err := FindTurns(bytes.NewReader(b))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if turns.ScopeEnvCtxInR8 != tc.r8 {
				t.Errorf("async_context in R8: %v, want %v", turns.ScopeEnvCtxInR8, tc.r8)
			}
			ef, _ := elf.NewFile(bytes.NewReader(b))
			syms, _ := ef.Symbols()
			at := map[string]uint64{}
			for _, s := range syms {
				off, _ := elfaddr.FileOffset(ef, s.Value)
				at[s.Name] = off
			}
			for name, off := range map[string]uint64{"ScopeWrap": turns.ScopeWrap, "ScopeEnv": turns.ScopeEnv, "Close": turns.Close, "MakeCallback": turns.MakeCallback} {
				var want uint64
				for sym, o := range at {
					if strings.HasPrefix(sym, prefixes[name]) {
						want = o
					}
				}
				if off == 0 || off != want {
					t.Errorf("%s at %#x, want %#x", name, off, want)
				}
			}
		})
	}
}

// FuzzFindTurns: any bytes give a result or an error, never a panic; a
// result's functions lie in the file.
func FuzzFindTurns(f *testing.F) {
	f.Add(buildFake(f, fakeNode))
	f.Fuzz(func(t *testing.T, b []byte) {
		turns, err := FindTurns(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, off := range []uint64{turns.ScopeWrap, turns.ScopeEnv, turns.Close, turns.MakeCallback} {
			if off >= uint64(len(b)) {
				t.Fatalf("function at %#x, past the file's end (%d bytes)", off, len(b))
			}
		}
	})
}

func BenchmarkFindTurns(b *testing.B) {
	file := buildFake(b, fakeNode)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := FindTurns(bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}
