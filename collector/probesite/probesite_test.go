package probesite

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// sslRead is SSL_read of Debian 12's libssl.so.3 (OpenSSL 3.0.19), as
// objdump -d shows it, offsets from the function's start.
var sslRead = cat(
	h(0x48, 0x83, 0xec, 0x18),                               // +00 sub $0x18,%rsp
	h(0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00), // +04 mov %fs:0x28,%rax
	h(0x48, 0x89, 0x44, 0x24, 0x08),                         // +0d mov %rax,0x8(%rsp)
	h(0x31, 0xc0),                                           // +12 xor %eax,%eax
	h(0x85, 0xd2),                                           // +14 test %edx,%edx
	h(0x78, 0x2f),                                           // +16 js +47 (the error path)
	h(0x48, 0x89, 0xe1),                                     // +18 mov %rsp,%rcx
	h(0x48, 0x63, 0xd2),                                     // +1b movslq %edx,%rdx
	h(0xe8, 0x3d, 0xfe, 0xff, 0xff),                         // +1e call ssl_read_internal: the entry site
	h(0x85, 0xc0),                                           // +23 test %eax,%eax
	h(0x7e, 0x03),                                           // +25 jle +2a
	h(0x8b, 0x04, 0x24),                                     // +27 mov (%rsp),%eax: the count read
	h(0x48, 0x8b, 0x54, 0x24, 0x08),                         // +2a mov 0x8(%rsp),%rdx
	h(0x64, 0x48, 0x2b, 0x14, 0x25, 0x28, 0x00, 0x00, 0x00), // +2f sub %fs:0x28,%rdx
	h(0x75, 0x44),                               // +38 jne +7e (stack check): the return site
	h(0x48, 0x83, 0xc4, 0x18),                   // +3a add $0x18,%rsp
	h(0x31, 0xd2, 0x31, 0xc9),                   // +3e xor %edx,%edx; xor %ecx,%ecx
	h(0x31, 0xf6, 0x31, 0xff),                   // +42 xor %esi,%esi; xor %edi,%edi
	h(0xc3),                                     // +46 ret
	h(0xe8, 0x44, 0x9f, 0xfe, 0xff),             // +47 call ERR_new
	h(0x48, 0x8d, 0x15, 0x05, 0xd5, 0x04, 0x00), // +4c lea ...(%rip),%rdx
	h(0xbe, 0x4c, 0x07, 0x00, 0x00),             // +53 mov $0x74c,%esi
	h(0x48, 0x8d, 0x3d, 0x62, 0xcc, 0x04, 0x00), // +58 lea ...(%rip),%rdi
	h(0xe8, 0x2c, 0xa6, 0xfe, 0xff),             // +5f call ERR_set_debug
	h(0x31, 0xc0, 0x31, 0xd2),                   // +64 xor %eax,%eax; xor %edx,%edx
	h(0xbe, 0x0f, 0x01, 0x00, 0x00),             // +68 mov $0x10f,%esi
	h(0xbf, 0x14, 0x00, 0x00, 0x00),             // +6d mov $0x14,%edi
	h(0xe8, 0x49, 0xa4, 0xfe, 0xff),             // +72 call ERR_set_error
	h(0xb8, 0xff, 0xff, 0xff, 0xff),             // +77 mov $-1,%eax
	h(0xeb, 0xac),                               // +7c jmp +2a
	h(0xe8, 0x3d, 0xb1, 0xfe, 0xff),             // +7e call __stack_chk_fail (never returns; the symbol ends)
)

// sslReadEx is SSL_read_ex of the same file: no branch after its call.
var sslReadEx = cat(
	h(0x48, 0x83, 0xec, 0x08),                         // +00 sub $0x8,%rsp
	h(0xe8, 0xc7, 0xfd, 0xff, 0xff),                   // +04 call ssl_read_internal
	h(0x31, 0xd2, 0x85, 0xc0),                         // +09 xor %edx,%edx; test %eax,%eax
	h(0x0f, 0x48, 0xc2),                               // +0d cmovs %edx,%eax
	h(0x48, 0x83, 0xc4, 0x08),                         // +10 add $0x8,%rsp
	h(0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff), // +14 xor ...
	h(0xc3), // +1c ret
)

func h(b ...byte) []byte { return b }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// patch returns a copy of b with p written at off.
func patch(b []byte, off int, p ...byte) []byte {
	c := bytes.Clone(b)
	copy(c[off:], p)
	return c
}

func TestFind(t *testing.T) {
	const base = 0x35430
	for _, tc := range []struct {
		name string
		code []byte
		args Args
		want Sites
		why  string // a word of the error when no sites
	}{
		{"SSL_read", sslRead, RDI | RSI, Sites{base + 0x1e, base + 0x38}, ""},
		{"SSL_write's arguments: the count as an int survives movslq", sslRead, RDI | RSI | EDX32, Sites{base + 0x1e, base + 0x38}, ""},
		{"a 64-bit third argument does not", sslRead, RDI | RSI | RDX, Sites{}, "writes an argument register"},
		{"a fourth argument is written (mov %rsp,%rcx)", sslRead, RDI | RSI | RCX, Sites{}, "writes an argument register"},
		{"the first argument written before the call: xor %edi,%edi at +12", patch(sslRead, 0x12, 0x31, 0xff), RDI | RSI, Sites{}, "writes an argument register"},
		{"SSL_read_ex: no branch after its call", sslReadEx, RDI | RSI | RCX, Sites{}, "no branch after the entry site"},
		{"RAX written after the stack check (xor %eax,%eax at +3e)", patch(sslRead, 0x3e, 0x31, 0xc0), RDI | RSI, Sites{}, "may change RAX"},
		{"a call after the return site that returns (a ret after __stack_chk_fail's call)", cat(sslRead, h(0xc3)), RDI | RSI, Sites{}, "may change RAX"},
		{"a jump back into the way in (jmp +1b at +7c)", patch(sslRead, 0x7c, 0xeb, 0x9d), RDI | RSI, Sites{}, "before the first call"},
		{"a way out without the stack check (jle to the ret at +46)", patch(sslRead, 0x25, 0x7e, 0x1f), RDI | RSI, Sites{}, "without passing"},
		{"a ret right after the count read is a way out the count's jle still dominates", patch(sslRead, 0x27, 0xc3, 0x90, 0x90), RDI | RSI, Sites{base + 0x1e, base + 0x25}, ""},
		{"a jump into an instruction (jle +2b)", patch(sslRead, 0x25, 0x7e, 0x04), RDI | RSI, Sites{}, "jumps into an instruction"},
		{"a tail call leaves the function (jmp rel32 far away at +3a, padded)", patch(sslRead, 0x3a, 0xe9, 0x00, 0x10, 0x00, 0x00, 0x90, 0x90, 0x90), RDI | RSI, Sites{}, "without a ret"},
		{"cut inside an instruction", sslRead[:0x21], RDI | RSI, Sites{}, "decoding"},
		{"cut after the call: no way out", sslRead[:0x23], RDI | RSI, Sites{}, "last instruction"},
		{"a prefixed return branch is not emulated (66 jne)", cat(sslRead[:0x38], h(0x66, 0x75, 0x44), sslRead[0x3a:]), RDI | RSI, Sites{}, ""},
		{"a jrcxz to the ret, not through the stack check (at +27, padded)", patch(sslRead, 0x27, 0xe3, 0x1d, 0x90), RDI | RSI, Sites{}, "without passing"},
		{"an indirect call first", patch(sslRead, 0x1e, 0xff, 0xd0, 0x90, 0x90, 0x90), RDI | RSI, Sites{}, "not a direct call"},
		{"endbr64 first", cat(h(0xf3, 0x0f, 0x1e, 0xfa), sslReadEx[:4], h(0xe8, 0, 0, 0, 0, 0x85, 0xc0, 0x74, 0x01, 0xc3, 0xc3)), RDI, Sites{base + 8, base + 15}, ""},
		{"empty", nil, RDI, Sites{}, "no direct call"},
		{"too long", make([]byte, MaxCode+1), RDI, Sites{}, "bytes of code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Find(tc.code, base, tc.args)
			if tc.want != (Sites{}) {
				if err != nil || got != tc.want {
					t.Fatalf("Find = %#x, %v; want %#x", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Find = %#x; want no sites (%q)", got, tc.why)
			}
			if !errors.Is(err, ErrNoSites) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Find: %v; want ErrNoSites saying %q", err, tc.why)
			}
		})
	}
}

func FuzzFind(f *testing.F) {
	f.Add(sslRead, uint8(RDI|RSI))
	f.Add(sslReadEx, uint8(RDI|RSI|RCX))
	f.Add(patch(sslRead, 0x3e, 0x31, 0xc0), uint8(RDI|RSI|EDX32))
	f.Fuzz(func(t *testing.T, code []byte, args uint8) {
		s, err := Find(code, 0x1000, Args(args))
		if err != nil {
			if !errors.Is(err, ErrNoSites) {
				t.Fatalf("error without ErrNoSites: %v", err)
			}
			return
		}
		e, r := int(s.Entry-0x1000), int(s.Return-0x1000)
		if e < 0 || e+5 > len(code) || code[e] != 0xe8 {
			t.Fatalf("entry site +%#x is no call rel32 in % x", e, code)
		}
		if r <= e || r >= len(code) {
			t.Fatalf("return site +%#x not after the entry site +%#x", r, e)
		}
		if b := code[r]; !(b >= 0x70 && b <= 0x7f || b == 0xeb || b == 0xe9 || b == 0x0f) {
			t.Fatalf("return site +%#x is no branch: % x", r, code[r:])
		}
	})
}

func BenchmarkFind(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if _, err := Find(sslRead, 0, RDI|RSI); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProbes: with sites, two plain uprobes, the return site first; without,
// an entry uprobe then a uretprobe at the function.
func TestProbes(t *testing.T) {
	if got, want := (Sites{Entry: 0x1e, Return: 0x38}).Probes(0x10), [2]Probe{{At: 0x38, Return: true}, {At: 0x1e}}; got != want {
		t.Errorf("with sites: %+v, want %+v", got, want)
	}
	if got, want := (Sites{}).Probes(0x10), [2]Probe{{At: 0x10}, {At: 0x10, Return: true, Uretprobe: true}}; got != want {
		t.Errorf("without: %+v, want %+v", got, want)
	}
}
