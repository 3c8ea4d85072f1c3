//go:build linux

package packet

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Fanout: several AF_PACKET sockets on one interface, each with its own ring
// and reader, joined in a PACKET_FANOUT group whose classic BPF program
// (FanoutProgram) picks the member of every frame. Each member follows its
// flows alone, so both directions of a flow must reach the same member: the
// kernel's PACKET_FANOUT_HASH does not promise that (it uses the skb's hash,
// which for locally sent segments is the sending socket's random txhash), so
// the program computes its own hash, symmetric in source and destination
// (docs/packet.md "Fanout").

// Classic BPF offsets relative to the frame's link-layer header (Linux's
// SKF_LL_OFF): the same bytes whether the frame is being sent or received,
// where absolute offsets start at the network header for received frames.
const skfLLOff = -0x200000

func ll(off int32) uint32 { return uint32(skfLLOff + off) }

// asm is a tiny classic-BPF assembler with labels, so the jumps below are
// computed rather than counted by hand.
type asm struct {
	ins    []unix.SockFilter
	labels map[string]int
	fixes  []fix
}

type fix struct {
	at     int
	jt, jf string // "" = next instruction
}

func (a *asm) op(code uint16, k uint32) { a.ins = append(a.ins, unix.SockFilter{Code: code, K: k}) }
func (a *asm) label(name string)        { a.labels[name] = len(a.ins) }

// jeq jumps to jt if A == k, else to jf ("" = fall through).
func (a *asm) jeq(k uint32, jt, jf string) {
	a.fixes = append(a.fixes, fix{at: len(a.ins), jt: jt, jf: jf})
	a.op(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, k)
}

// jset jumps to jt if A & k != 0.
func (a *asm) jset(k uint32, jt string) {
	a.fixes = append(a.fixes, fix{at: len(a.ins), jt: jt})
	a.op(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, k)
}

func (a *asm) ja(to string) {
	a.fixes = append(a.fixes, fix{at: len(a.ins), jt: to})
	a.op(unix.BPF_JMP|unix.BPF_JA, 0)
}

func (a *asm) link() ([]unix.SockFilter, error) {
	for _, f := range a.fixes {
		off := func(l string) (int, error) {
			if l == "" {
				return 0, nil
			}
			to, ok := a.labels[l]
			if !ok || to <= f.at {
				return 0, fmt.Errorf("fanout program: label %q is not ahead of instruction %d", l, f.at)
			}
			return to - f.at - 1, nil
		}
		jt, err := off(f.jt)
		if err != nil {
			return nil, err
		}
		jf, err := off(f.jf)
		if err != nil {
			return nil, err
		}
		in := &a.ins[f.at]
		if in.Code == unix.BPF_JMP|unix.BPF_JA {
			in.K = uint32(jt)
			continue
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("fanout program: jump from %d too far", f.at)
		}
		in.Jt, in.Jf = uint8(jt), uint8(jf)
	}
	return a.ins, nil
}

const (
	ldAbsH = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
	ldIndW = unix.BPF_LD | unix.BPF_W | unix.BPF_IND
	ldIndH = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
	ldIndB = unix.BPF_LD | unix.BPF_B | unix.BPF_IND
	ldMem  = unix.BPF_LD | unix.BPF_MEM
	ldxMem = unix.BPF_LDX | unix.BPF_MEM
	ldxImm = unix.BPF_LDX | unix.BPF_IMM
	st     = unix.BPF_ST
	tax    = unix.BPF_MISC | unix.BPF_TAX
	txa    = unix.BPF_MISC | unix.BPF_TXA
	xorX   = unix.BPF_ALU | unix.BPF_XOR | unix.BPF_X
	addX   = unix.BPF_ALU | unix.BPF_ADD | unix.BPF_X
	addK   = unix.BPF_ALU | unix.BPF_ADD | unix.BPF_K
	andK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	lshK   = unix.BPF_ALU | unix.BPF_LSH | unix.BPF_K
	rshK   = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
	mulK   = unix.BPF_ALU | unix.BPF_MUL | unix.BPF_K
	retA   = unix.BPF_RET | unix.BPF_A
)

// Scratch memory of the program.
const (
	mHash  = 0 // XOR of the words hashed so far
	mTmp   = 1
	mL2    = 2 // link-layer header length
	mProto = 3 // IP protocol / next header
)

// FanoutProgram returns the classic BPF program that picks a frame's member
// of a fanout group (the kernel takes its result modulo the group's size).
// It hashes the XOR of the IP source and destination addresses and, for TCP
// that is not an IPv4 fragment, of the two ports; XOR makes it the same for
// both directions of a flow. UDP hashes by address only: a VXLAN or Geneve
// sender picks the outer source port per inner flow, so the two directions
// of one inner flow carry different ports, and a fragmented datagram's later
// fragments carry none. Other tunnels (IPIP, GRE) hash by their outer
// addresses too, so a tunnel's traffic between two nodes stays on one
// member. Frames that are not IP (or carry two VLAN tags) go to member 0.
func FanoutProgram() ([]unix.SockFilter, error) {
	a := &asm{labels: map[string]int{}}
	a.op(ldAbsH, ll(12)) // ethertype
	a.op(ldxImm, 14)
	a.jeq(0x8100, "", "l3") // one in-band VLAN tag
	a.op(ldAbsH, ll(16))
	a.op(ldxImm, 18)
	a.label("l3")
	a.jeq(0x0800, "v4", "")
	a.jeq(0x86dd, "v6", "")
	a.op(unix.BPF_RET|unix.BPF_K, 0)

	// IPv4: X is the link-layer length.
	a.label("v4")
	a.op(txa, 0)
	a.op(st, mL2)
	a.op(ldIndW, ll(12)) // source
	a.op(st, mHash)
	a.op(ldIndW, ll(16)) // destination
	a.op(ldxMem, mHash)
	a.op(xorX, 0)
	a.op(st, mHash)
	a.op(ldxMem, mL2)
	a.op(ldIndH, ll(6))   // flags and fragment offset
	a.jset(0x3fff, "mix") // a fragment: all of its datagram by address
	a.op(ldIndB, ll(9))   // protocol
	a.op(st, mProto)
	a.op(ldIndB, ll(0)) // version and header length
	a.op(andK, 0xf)
	a.op(lshK, 2)
	a.op(addX, 0)
	a.op(tax, 0) // X: start of the transport header
	a.op(ldMem, mProto)
	a.jeq(6, "ports", "mix")

	// IPv6 (extension headers are not walked: such frames hash by address).
	a.label("v6")
	a.op(txa, 0)
	a.op(st, mL2)
	a.op(ldIndW, ll(8))
	a.op(st, mHash)
	for off := int32(12); off < 40; off += 4 {
		a.op(ldIndW, ll(off))
		a.op(ldxMem, mHash)
		a.op(xorX, 0)
		a.op(st, mHash)
		a.op(ldxMem, mL2)
	}
	a.op(ldIndB, ll(6)) // next header
	a.op(st, mProto)
	a.op(txa, 0)
	a.op(addK, 40)
	a.op(tax, 0)
	a.op(ldMem, mProto)
	a.jeq(6, "ports", "mix")

	a.label("ports")
	a.op(ldIndH, ll(0))
	a.op(st, mTmp)
	a.op(ldIndH, ll(2))
	a.op(ldxMem, mTmp)
	a.op(xorX, 0)
	a.op(ldxMem, mHash)
	a.op(xorX, 0)
	a.op(st, mHash)

	// Mix every bit into the low ones (MurmurHash3's 32-bit finaliser): the
	// kernel takes the result modulo the group's size, and a plain fold of
	// the bytes is not enough. Linux picks a client's ephemeral ports in
	// even steps of 2 to 16 from one connection to the next, so the ports'
	// low bit never changes and the next bits change together; with a
	// byte fold, the low bit of the hash changed only every ~28
	// connections, and a burst of connections to one server all went to
	// one member of a group of two.
	a.label("mix")
	a.op(ldMem, mHash)
	for _, step := range []struct{ shift, mul uint32 }{{16, 0x85ebca6b}, {13, 0xc2b2ae35}, {16, 0}} {
		a.op(st, mTmp)
		a.op(rshK, step.shift)
		a.op(ldxMem, mTmp)
		a.op(xorX, 0)
		if step.mul != 0 {
			a.op(mulK, step.mul)
		}
	}
	a.op(retA, 0)
	return a.link()
}

// dropAll is a socket filter that accepts nothing: a group's sockets wear it
// until every member has joined, so no frame is seen by two of them.
var dropAll = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

func attachFilter(fd int, prog []unix.SockFilter) error {
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
}

// joinFanout makes the bound sockets of rings one fanout group steered by
// FanoutProgram. The first socket creates the group with an id the kernel
// picks (so no other process's group is joined by chance); the others join
// it.
func joinFanout(rings []*Ring) error {
	prog, err := FanoutProgram()
	if err != nil {
		return err
	}
	first := rings[0].fd
	if err := unix.SetsockoptInt(first, unix.SOL_PACKET, unix.PACKET_FANOUT,
		(unix.PACKET_FANOUT_CBPF|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16); err != nil {
		return fmt.Errorf("creating the fanout group: %w", err)
	}
	v, err := unix.GetsockoptInt(first, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return fmt.Errorf("reading the fanout group id: %w", err)
	}
	id := v & 0xffff
	if err := unix.SetsockoptSockFprog(first, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fmt.Errorf("setting the fanout program: %w", err)
	}
	for i, r := range rings[1:] {
		if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, id|unix.PACKET_FANOUT_CBPF<<16); err != nil {
			return fmt.Errorf("joining fanout group %d (member %d): %w", id, i+1, err)
		}
	}
	return nil
}
