package nodejs

import (
	"debug/elf"
	"fmt"
	"io"
	"strings"

	"github.com/zerotrace/zerotrace/collector/elfaddr"
)

// Turns holds the file offsets (uprobe addresses) of the functions.
type Turns struct {
	// ScopeWrap: InternalCallbackScope(AsyncWrap* wrap, int flags): this in
	// DI, wrap in SI.
	ScopeWrap uint64
	// ScopeEnv: InternalCallbackScope(Environment*, Local<Object>, const
	// async_context& ctx, int flags): this in DI, &ctx in CX (Node.js 18
	// and 20), or, where the object is a std::variant passed in two
	// registers (Node.js 22), in R8 (ScopeEnvCtxInR8).
	ScopeEnv        uint64
	ScopeEnvCtxInR8 bool
	// Close: InternalCallbackScope::Close(): this in DI; it runs the ticks
	// and microtasks of an outermost scope.
	Close uint64
	// MakeCallback: AsyncWrap::MakeCallback(Local<Function>, int,
	// Local<Value>*): the wrap in DI; it opens a scope through the
	// Environment constructor.
	MakeCallback uint64
}

// The mangled names' prefixes (Itanium ABI; complete-object constructors,
// C1, share their address with the base-object ones, C2).
var prefixes = map[string]string{
	"ScopeWrap":    "_ZN4node21InternalCallbackScopeC1EPNS_9AsyncWrapE",
	"ScopeEnv":     "_ZN4node21InternalCallbackScopeC1EPNS_11EnvironmentE",
	"Close":        "_ZN4node21InternalCallbackScope5CloseEv",
	"MakeCallback": "_ZN4node9AsyncWrap12MakeCallbackEN2v85LocalINS1_8FunctionEEE",
}

// FindTurns reads the Node.js executable at r (an x86-64 ELF file with its
// symbol table; both the full table and the dynamic one are read) and
// returns the functions' offsets. Each prefix must name exactly one
// function (one address).
func FindTurns(r io.ReaderAt) (t Turns, err error) {
	defer func() {
		if p := recover(); p != nil { // debug/elf on a hostile file
			err = fmt.Errorf("reading ELF: %v", p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return Turns{}, fmt.Errorf("reading ELF: %w", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return Turns{}, fmt.Errorf("not an x86-64 ELF64 file (%v %v)", f.Class, f.Machine)
	}
	found := map[string]map[uint64]bool{}
	variant := false // the Environment constructor's object is a std::variant
	for _, syms := range [][]elf.Symbol{symbols(f.Symbols), symbols(f.DynamicSymbols)} {
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
				continue
			}
			for name, p := range prefixes {
				if strings.HasPrefix(s.Name, p) {
					if name == "ScopeEnv" && strings.HasPrefix(s.Name[len(p):], "St7variant") {
						variant = true
					}
					if found[name] == nil {
						found[name] = map[uint64]bool{}
					}
					found[name][s.Value] = true
				}
			}
		}
	}
	for name, dst := range map[string]*uint64{"ScopeWrap": &t.ScopeWrap, "ScopeEnv": &t.ScopeEnv, "Close": &t.Close, "MakeCallback": &t.MakeCallback} {
		if len(found[name]) != 1 {
			return Turns{}, fmt.Errorf("%s (%s…): %d functions, want 1 (a stripped binary has no symbol table)", name, prefixes[name], len(found[name]))
		}
		for addr := range found[name] {
			off, ok := elfaddr.FileOffset(f, addr)
			if !ok {
				return Turns{}, fmt.Errorf("%s at %#x: outside the file's code", name, addr)
			}
			*dst = off
		}
	}
	t.ScopeEnvCtxInR8 = variant
	return t, nil
}

// symbols returns what read returns, nothing on an error (a table the file
// lacks).
func symbols(read func() ([]elf.Symbol, error)) []elf.Symbol {
	s, _ := read()
	return s
}
