package probesite

import (
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// Sites are the file offsets of a function's entry site (a call the
// kernel emulates, the entry program's arguments still in their
// registers) and return site (a branch the kernel emulates, passed by
// every way out after that call, the return value in RAX).
type Sites struct {
	Entry, Return uint64
}

// Probe is one of a function's two probes: at file offset At, its return
// program (Return) or its entry program, as a uretprobe or a plain uprobe.
type Probe struct {
	At                uint64
	Return, Uretprobe bool
}

// Probes is where the function at file offset fn gets its entry and
// return probes, in the order to attach them: at its sites, the return
// site first, so that a call entered between the two attaches is never
// left open; without sites (s zero), an entry uprobe, then a uretprobe,
// at fn.
func (s Sites) Probes(fn uint64) [2]Probe {
	if s.Entry != 0 && s.Return != 0 {
		return [2]Probe{{At: s.Return, Return: true}, {At: s.Entry}}
	}
	return [2]Probe{{At: fn}, {At: fn, Return: true, Uretprobe: true}}
}

// Args are the argument registers an entry program reads.
type Args uint8

const (
	RDI   Args = 1 << iota // the first argument
	RSI                    // the second
	RDX                    // the third, all 64 bits
	RCX                    // the fourth
	EDX32                  // the third as a 32-bit int: a sign or zero extension of EDX into RDX keeps it
)

// MaxCode bounds the function's bytes Find reads; longer code has no
// sites (the functions probed are wrappers of a few dozen instructions).
const MaxCode = 4096

// maxPrefix bounds the instructions before the entry site.
const maxPrefix = 24

// ErrNoSites wraps every reason Find gives.
var ErrNoSites = errors.New("no probe sites")

type inst struct {
	pc  int
	len int
	in  x86asm.Inst
}

// Find returns the sites of the function whose code starts at file
// offset off; args are the registers its entry program reads. An error
// (ErrNoSites) says why the function has none.
func Find(code []byte, off uint64, args Args) (Sites, error) {
	if len(code) > MaxCode {
		return Sites{}, fmt.Errorf("%w: %d bytes of code (at most %d)", ErrNoSites, len(code), MaxCode)
	}
	insts, at, err := decode(code)
	if err != nil {
		return Sites{}, err
	}
	e, err := entrySite(insts, at, args)
	if err != nil {
		return Sites{}, err
	}
	r, err := returnSite(code, insts, at, e)
	if err != nil {
		return Sites{}, err
	}
	return Sites{Entry: off + uint64(insts[e].pc), Return: off + uint64(insts[r].pc)}, nil
}

// decode decodes code from its start to its end; at maps an instruction's
// start to its index (-1 elsewhere). Every direct jump must land on an
// instruction of the function or outside it.
func decode(code []byte) ([]inst, []int, error) {
	at := make([]int, len(code)+1)
	for i := range at {
		at[i] = -1
	}
	var insts []inst
	for pc := 0; pc < len(code); {
		var in x86asm.Inst
		n := 0
		if isEndbr64(code[pc:]) { // unknown to x86asm
			in, n = x86asm.Inst{Op: x86asm.NOP, Len: 4}, 4
		} else {
			var err error
			if in, err = x86asm.Decode(code[pc:], 64); err != nil {
				return nil, nil, fmt.Errorf("%w: decoding at +%#x: %v", ErrNoSites, pc, err)
			}
			if in.Op == 0 { // a prefix alone, or cut
				return nil, nil, fmt.Errorf("%w: decoding at +%#x: no instruction in % x", ErrNoSites, pc, code[pc:min(pc+8, len(code))])
			}
			n = in.Len
		}
		at[pc] = len(insts)
		insts = append(insts, inst{pc: pc, len: n, in: in})
		pc += n
	}
	for _, i := range insts {
		t, ok := target(i)
		if ok && t >= 0 && t < len(code) && at[t] < 0 {
			return nil, nil, fmt.Errorf("%w: %v at +%#x jumps into an instruction (+%#x)", ErrNoSites, i.in.Op, i.pc, t)
		}
	}
	return insts, at, nil
}

func isEndbr64(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa
}

// target is a direct jump's or call's destination, relative to the code's
// start; ok false for anything else.
func target(i inst) (int, bool) {
	if !isJump(i.in.Op) && i.in.Op != x86asm.CALL {
		return 0, false
	}
	rel, ok := i.in.Args[0].(x86asm.Rel)
	if !ok {
		return 0, false
	}
	return i.pc + i.len + int(rel), true
}

func isJump(op x86asm.Op) bool {
	switch op {
	case x86asm.JMP, x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE, x86asm.JL,
		x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO, x86asm.JP, x86asm.JS:
		return true
	}
	return false
}

// entrySite is the index of the first call reached from the function's
// start, when every instruction before it leaves args alone and nothing
// jumps between the start and it.
func entrySite(insts []inst, at []int, args Args) (int, error) {
	for k, i := range insts {
		if k >= maxPrefix {
			break
		}
		if i.in.Op == x86asm.CALL {
			if i.len != 5 || i.in.Prefix[0] != 0 {
				return 0, fmt.Errorf("%w: the first call (+%#x) is not a direct call the kernel emulates", ErrNoSites, i.pc)
			}
			for _, j := range insts {
				if t, ok := target(j); ok && j.in.Op != x86asm.CALL && t > 0 && t <= i.pc {
					return 0, fmt.Errorf("%w: +%#x jumps to +%#x, before the first call (+%#x)", ErrNoSites, j.pc, t, i.pc)
				}
			}
			return k, nil
		}
		if err := keepsArgs(i, args); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: no direct call among the first %d instructions", ErrNoSites, maxPrefix)
}

// keepsArgs reports (nil) whether i, before the entry site, leaves the
// registers in args as the caller set them.
func keepsArgs(i inst, args Args) error {
	in := i.in
	switch in.Op {
	case x86asm.NOP, x86asm.PUSH, x86asm.TEST, x86asm.CMP:
		return nil
	case x86asm.MOV, x86asm.MOVZX, x86asm.MOVSX, x86asm.LEA, x86asm.ADD, x86asm.SUB, x86asm.AND, x86asm.OR, x86asm.XOR:
		if r, ok := in.Args[0].(x86asm.Reg); ok && needs(args, r) {
			return fmt.Errorf("%w: %v at +%#x writes an argument register", ErrNoSites, in, i.pc)
		}
		return nil
	case x86asm.MOVSXD:
		// movslq %edx,%rdx keeps a 32-bit argument.
		d, _ := in.Args[0].(x86asm.Reg)
		s, _ := in.Args[1].(x86asm.Reg)
		if !needs(args, d) || (d == x86asm.RDX && s == x86asm.EDX && args&RDX == 0) {
			return nil
		}
		return fmt.Errorf("%w: %v at +%#x writes an argument register", ErrNoSites, in, i.pc)
	}
	if isJump(in.Op) && in.Op != x86asm.JMP {
		if _, ok := in.Args[0].(x86asm.Rel); ok {
			return nil // its taken way skips the entry site: that call is not read
		}
	}
	return fmt.Errorf("%w: %v at +%#x before the first call", ErrNoSites, in, i.pc)
}

// family is the argument bit of a register of any width (0: not an
// argument register).
func family(r x86asm.Reg) Args {
	switch r {
	case x86asm.DIB, x86asm.DI, x86asm.EDI, x86asm.RDI:
		return RDI
	case x86asm.SIB, x86asm.SI, x86asm.ESI, x86asm.RSI:
		return RSI
	case x86asm.DL, x86asm.DH, x86asm.DX, x86asm.EDX, x86asm.RDX:
		return RDX
	case x86asm.CL, x86asm.CH, x86asm.CX, x86asm.ECX, x86asm.RCX:
		return RCX
	}
	return 0
}

// needs reports whether r (any width) holds an argument in args; a Mem or
// no register is none.
func needs(args Args, r x86asm.Reg) bool {
	f := family(r)
	return args&f != 0 || (f == RDX && args&EDX32 != 0)
}

func isRAX(r x86asm.Reg) bool {
	return r == x86asm.AL || r == x86asm.AH || r == x86asm.AX || r == x86asm.EAX || r == x86asm.RAX
}

// way is where an instruction leads: the indexes of its successors, or
// out (a ret), or leave (a way out of the function that is no ret: a
// jump outside it or through a register, the code's end).
type way struct {
	next  []int
	out   bool
	leave bool
}

// follow is where insts[k] leads.
func follow(code []byte, insts []inst, at []int, k int) way {
	i := insts[k]
	fall := func() way {
		if k+1 >= len(insts) {
			return way{leave: true}
		}
		return way{next: []int{k + 1}}
	}
	switch {
	case i.in.Op == x86asm.RET:
		return way{out: true}
	case otherBranch(i.in):
		return way{leave: true} // a way this walk does not follow
	case isTrap(i.in):
		return way{} // no way on
	case i.in.Op == x86asm.CALL:
		if noReturn(insts, k) {
			return way{}
		}
		return fall()
	case isJump(i.in.Op):
		t, ok := target(i)
		if !ok || t < 0 || t >= len(code) {
			return way{leave: true}
		}
		w := way{next: []int{at[t]}}
		if i.in.Op != x86asm.JMP {
			f := fall()
			w.next, w.leave = append(w.next, f.next...), f.leave
		}
		return w
	}
	return fall()
}

// otherBranch reports whether in moves control in a way follow does not
// model (loop, jcxz, far jumps, calls and returns, interrupt returns,
// transactions): the walks take it for a way out of the function.
func otherBranch(in x86asm.Inst) bool {
	switch in.Op {
	case x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE, x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ, x86asm.LJMP,
		x86asm.LCALL, x86asm.LRET, x86asm.IRET, x86asm.IRETD, x86asm.IRETQ, x86asm.SYSRET, x86asm.SYSEXIT,
		x86asm.XBEGIN, x86asm.XABORT:
		return true
	}
	if _, ok := in.Args[0].(x86asm.Rel); ok {
		return !isJump(in.Op) && in.Op != x86asm.CALL
	}
	return false
}

// noReturn reports whether the call insts[k] is the function's last
// instruction but padding: a call that never returns
// (__stack_chk_fail), after which the compiler placed nothing.
func noReturn(insts []inst, k int) bool {
	if insts[k].in.Op != x86asm.CALL {
		return false
	}
	for _, i := range insts[k+1:] {
		if i.in.Op != x86asm.NOP && !isTrap(i.in) {
			return false
		}
	}
	return true
}

// returnSite is the index of the first branch the kernel emulates that
// every way from the entry site's return to a ret passes, with no way out
// other than a ret, and from which every way to a ret leaves RAX alone.
func returnSite(code []byte, insts []inst, at []int, e int) (int, error) {
	start := e + 1
	if start >= len(insts) {
		return 0, fmt.Errorf("%w: the entry site is the code's last instruction", ErrNoSites)
	}
	why := "no branch after the entry site"
	for r := start; r < len(insts); r++ {
		if !emulated(code, insts[r]) {
			continue
		}
		if !reaches(code, insts, at, start, r) {
			continue
		}
		if leak := bypass(code, insts, at, start, r); leak != "" {
			why = leak
			continue
		}
		if bad := tail(code, insts, at, r); bad != "" {
			why = bad
			continue
		}
		return r, nil
	}
	return 0, fmt.Errorf("%w: %s", ErrNoSites, why)
}

// emulated reports whether i is a branch the kernel emulates (no prefix:
// jcc rel8/rel32, jmp rel8/rel32).
func emulated(code []byte, i inst) bool {
	b := code[i.pc:]
	switch {
	case i.len == 2 && (b[0] >= 0x70 && b[0] <= 0x7f || b[0] == 0xeb):
		return true
	case i.len == 5 && b[0] == 0xe9:
		return true
	case i.len == 6 && b[0] == 0x0f && b[1] >= 0x80 && b[1] <= 0x8f:
		return true
	}
	return false
}

// walk visits every instruction on a way from insts[from] once, with
// where it leads, without going through insts[stop] (-1: none); it stops
// when visit returns false, and reports whether it went to the end.
func walk(code []byte, insts []inst, at []int, from, stop int, visit func(k int, w way) bool) bool {
	seen := make([]bool, len(insts))
	stack := []int{from}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if k == stop || seen[k] {
			continue
		}
		seen[k] = true
		w := follow(code, insts, at, k)
		if !visit(k, w) {
			return false
		}
		stack = append(stack, w.next...)
	}
	return true
}

// reaches reports whether insts[to] is on a way from insts[from].
func reaches(code []byte, insts []inst, at []int, from, to int) bool {
	return !walk(code, insts, at, from, -1, func(k int, _ way) bool { return k != to })
}

// bypass says how a way from insts[from] gets out of the function without
// passing insts[r] ("": none does).
func bypass(code []byte, insts []inst, at []int, from, r int) string {
	why := ""
	walk(code, insts, at, from, r, func(k int, w way) bool {
		if w.out || w.leave {
			why = fmt.Sprintf("+%#x gets out of the function without passing +%#x", insts[k].pc, insts[r].pc)
		}
		return why == ""
	})
	return why
}

// tail says what, on a way from insts[r] to a ret, may change RAX or get
// out of the function otherwise ("": nothing).
func tail(code []byte, insts []inst, at []int, r int) string {
	why := ""
	walk(code, insts, at, r, -1, func(k int, w way) bool {
		i := insts[k]
		switch {
		case w.leave:
			why = fmt.Sprintf("after +%#x, +%#x gets out of the function without a ret", insts[r].pc, i.pc)
		case !keepsRAX(i) && !noReturn(insts, k):
			why = fmt.Sprintf("after +%#x, %v at +%#x may change RAX", insts[r].pc, i.in, i.pc)
		}
		return why == ""
	})
	return why
}

// keepsRAX reports whether i, between the return site and a ret, surely
// leaves RAX as it was.
func keepsRAX(i inst) bool {
	in := i.in
	switch in.Op {
	case x86asm.RET, x86asm.NOP, x86asm.TEST, x86asm.CMP, x86asm.LEAVE:
		return true
	case x86asm.MOV, x86asm.MOVZX, x86asm.MOVSX, x86asm.MOVSXD, x86asm.LEA, x86asm.ADD, x86asm.SUB, x86asm.AND,
		x86asm.OR, x86asm.XOR, x86asm.POP, x86asm.PUSH:
		if r, ok := in.Args[0].(x86asm.Reg); ok && isRAX(r) {
			return false
		}
		return true
	}
	if isJump(in.Op) {
		_, ok := in.Args[0].(x86asm.Rel)
		return ok
	}
	return isTrap(in)
}

// isTrap reports whether in never falls through: int3 or ud2 (an int 0x80
// returns: not a trap).
func isTrap(in x86asm.Inst) bool {
	return in.Op == x86asm.UD2 || (in.Op == x86asm.INT && in.Args[0] == x86asm.Imm(3))
}
