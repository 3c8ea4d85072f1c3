//go:build linux

package doctor

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zerotrace/zerotrace/collector/agent"
)

// TestCapabilitiesCheck: what each set of capabilities lets the
// collector do, per configuration, from the bits of CapEff.
func TestCapabilitiesCheck(t *testing.T) {
	bits := func(caps ...int) uint64 {
		var m uint64
		for _, c := range caps {
			m |= 1 << uint(c)
		}
		return m
	}
	root := uint64(0x000001ffffffffff) // every capability of Linux 6.x
	daemonSet := bits(unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_NET_RAW, unix.CAP_NET_ADMIN, unix.CAP_SYS_RESOURCE,
		unix.CAP_SYS_PTRACE, unix.CAP_DAC_READ_SEARCH) // deploy/kubernetes/daemonset.yaml
	ebpfOnly := agent.Defaults()
	withPackets := agent.Defaults()
	withPackets.Packet.Interfaces = []agent.InterfaceConfig{{Pattern: "veth*"}}
	packetsOnly := withPackets
	packetsOnly.EBPF.Enabled = false
	for _, c := range []struct {
		name string
		cfg  agent.Config
		caps uint64
		want Status
		has  []string // in the detail
		not  []string
	}{
		{"root", withPackets, root, OK, []string{"has CAP_BPF, CAP_PERFMON, CAP_NET_RAW, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH"}, nil},
		{"the DaemonSet's", withPackets, daemonSet, OK, []string{"has CAP_BPF"}, []string{"lacks"}},
		{"nobody", ebpfOnly, 0, Missing,
			[]string{"lacks CAP_BPF (", "CAP_PERFMON (", "CAP_SYS_PTRACE (", "CAP_DAC_READ_SEARCH (", "not needed with this configuration: CAP_NET_RAW"}, nil},
		{"nobody with packets", withPackets, 0, Missing, []string{"lacks CAP_BPF (", "CAP_NET_RAW ("}, []string{"not needed"}},
		{"CAP_SYS_ADMIN stands in for BPF and PERFMON", ebpfOnly, bits(unix.CAP_SYS_ADMIN), Degraded,
			[]string{"lacks CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}, []string{"CAP_BPF (", "CAP_PERFMON ("}},
		{"no ptrace", ebpfOnly, bits(unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_DAC_READ_SEARCH), Degraded, []string{"lacks CAP_SYS_PTRACE"}, nil},
		{"packets only, without CAP_NET_RAW", packetsOnly, bits(unix.CAP_BPF), Missing, []string{"lacks CAP_NET_RAW (open AF_PACKET sockets); not needed with this configuration: CAP_PERFMON"}, nil},
		{"packets only", packetsOnly, bits(unix.CAP_NET_RAW), OK, []string{"has CAP_NET_RAW"}, nil},
	} {
		got := capabilitiesCheck(&c.cfg, c.caps)
		if got.Status != c.want {
			t.Errorf("%s: %s, want %s: %s", c.name, got.Status, c.want, got.Detail)
		}
		for _, h := range c.has {
			if !strings.Contains(got.Detail, h) {
				t.Errorf("%s: want %q in %q", c.name, h, got.Detail)
			}
		}
		for _, n := range c.not {
			if strings.Contains(got.Detail, n) {
				t.Errorf("%s: %q in %q", c.name, n, got.Detail)
			}
		}
		if got.Status != OK && got.Cost == "" {
			t.Errorf("%s: no cost", c.name)
		}
	}
}
