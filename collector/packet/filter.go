//go:build linux

package packet

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// BPF opcodes used below.
const (
	ldh  = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
	ldb  = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
	jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	retk = unix.BPF_RET | unix.BPF_K
)

// DefaultFilter accepts TCP and UDP over IPv4 and IPv6, the tunnels that
// carry them (IPIP, 6in4, GRE; VXLAN and Geneve are UDP) and VLAN-tagged
// frames (decoded in user space).
var DefaultFilter = []unix.SockFilter{
	/* 0 */ stmt(ldh, 12), // ethertype
	/* 1 */ jump(jeq, 0x0800, 3, 0), // IPv4 → 5
	/* 2 */ jump(jeq, 0x86dd, 8, 0), // IPv6 → 11
	/* 3 */ jump(jeq, 0x8100, 12, 0), // VLAN → accept
	/* 4 */ jump(jeq, 0x88a8, 11, 10), // QinQ → accept, else drop
	/* 5 */ stmt(ldb, 23), // IPv4 protocol
	/* 6 */ jump(jeq, 6, 9, 0), // TCP
	/* 7 */ jump(jeq, 17, 8, 0), // UDP (VXLAN, Geneve, DNS)
	/* 8 */ jump(jeq, 4, 7, 0), // IPIP
	/* 9 */ jump(jeq, 41, 6, 0), // 6in4
	/* 10 */ jump(jeq, 47, 5, 4), // GRE, else drop
	/* 11 */ stmt(ldb, 20), // IPv6 next header
	/* 12 */ jump(jeq, 6, 3, 0),
	/* 13 */ jump(jeq, 17, 2, 0),
	/* 14 */ jump(jeq, 47, 1, 0),
	/* 15 */ stmt(retk, 0), // drop
	/* 16 */ stmt(retk, 262144), // accept
}

// CompileFilter compiles a tcpdump expression with `tcpdump -ddd` (for the
// link type of an Ethernet interface). "" returns DefaultFilter.
func CompileFilter(expr string) ([]unix.SockFilter, error) {
	if strings.TrimSpace(expr) == "" {
		return DefaultFilter, nil
	}
	out, err := exec.Command("tcpdump", "-y", "EN10MB", "-ddd", expr).Output()
	if err != nil {
		return nil, fmt.Errorf("compiling filter %q with tcpdump: %w", expr, err)
	}
	return ParseDDD(string(out))
}

// ParseDDD reads `tcpdump -ddd` output: a count, then "code jt jf k" lines.
func ParseDDD(s string) ([]unix.SockFilter, error) {
	rows := strings.Split(strings.TrimSpace(s), "\n")
	if len(rows) == 0 {
		return nil, fmt.Errorf("empty filter")
	}
	n, err := strconv.Atoi(strings.TrimSpace(rows[0]))
	if err != nil || n != len(rows)-1 || n == 0 || n > 4096 {
		return nil, fmt.Errorf("filter: bad instruction count %q", rows[0])
	}
	prog := make([]unix.SockFilter, 0, n)
	for _, r := range rows[1:] {
		f := strings.Fields(r)
		if len(f) != 4 {
			return nil, fmt.Errorf("filter: bad line %q", r)
		}
		var v [4]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("filter: bad line %q", r)
			}
		}
		if v[1] > 255 || v[2] > 255 || v[0] > 0xffff {
			return nil, fmt.Errorf("filter: bad line %q", r)
		}
		prog = append(prog, unix.SockFilter{Code: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	return prog, nil
}
