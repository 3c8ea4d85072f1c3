//go:build linux

package doctor

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/zerotrace/zerotrace/collector/agent"
)

// capNeed is a capability the collector uses and what for.
type capNeed struct {
	bit     int
	name    string
	purpose string // what it lets the collector do
	// required says whether the configuration cannot run without it;
	// otherwise its absence degrades the capture.
	required func(*agent.Config) bool
	used     func(*agent.Config) bool // nil: always
	cost     string
}

func ebpfOn(c *agent.Config) bool   { return c.EBPF.Enabled }
func packetOn(c *agent.Config) bool { return len(c.Packet.Interfaces) > 0 }
func never(*agent.Config) bool      { return false }

// capNeeds: CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON (and is
// all a kernel before 5.8 knows).
var capNeeds = []capNeed{
	{unix.CAP_BPF, "CAP_BPF", "load BPF programs and maps", ebpfOn, ebpfOn, noBPF},
	{unix.CAP_PERFMON, "CAP_PERFMON", "attach tracepoints and uprobes", ebpfOn, ebpfOn, "no eBPF capture: the programs cannot attach"},
	{unix.CAP_NET_RAW, "CAP_NET_RAW", "open AF_PACKET sockets", packetOn, packetOn, "no packet capture"},
	{unix.CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "read /proc/<pid>/exe and the namespaces of other users' processes", never, ebpfOn,
		"other users' processes keep no executable path: their Go and CPython handoffs are not followed and their network namespace is not known"},
	{unix.CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH", "read /proc files and binaries other users keep private", never, ebpfOn,
		"binaries other users keep private are not probed (Go, CPython)"},
}

// effectiveCaps reads the capability sets of this process.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/status: no CapEff line")
}

func has(caps uint64, bit int) bool { return caps&(1<<uint(bit)) != 0 }

// canBPF says whether this process may load BPF programs.
func canBPF(caps uint64) bool {
	return has(caps, unix.CAP_SYS_ADMIN) || (has(caps, unix.CAP_BPF) && has(caps, unix.CAP_PERFMON))
}

// capabilitiesCheck names every capability the configuration needs that
// this process lacks, and what each costs.
func capabilitiesCheck(cfg *agent.Config, caps uint64) Check {
	const name = "capabilities"
	var have, lack, costs, notNeeded []string
	required := false
	for _, n := range capNeeds {
		got := has(caps, n.bit) || (has(caps, unix.CAP_SYS_ADMIN) && (n.bit == unix.CAP_BPF || n.bit == unix.CAP_PERFMON))
		switch {
		case got:
			have = append(have, n.name)
		case !n.used(cfg):
			notNeeded = append(notNeeded, n.name+" ("+n.purpose+")")
		default:
			lack = append(lack, n.name+" ("+n.purpose+")")
			costs = append(costs, n.cost)
			required = required || n.required(cfg)
		}
	}
	detail := "has " + strings.Join(have, ", ")
	if len(lack) > 0 {
		detail = "lacks " + strings.Join(lack, ", ")
	}
	if len(notNeeded) > 0 {
		detail += "; not needed with this configuration: " + strings.Join(notNeeded, ", ")
	}
	if userns := userNamespace(); userns != "" && ebpfOn(cfg) {
		return missing(name, detail+"; "+userns, noBPF+": capabilities in a user namespace do not reach BPF")
	}
	switch {
	case required:
		return missing(name, detail, strings.Join(dedup(costs), "; "))
	case len(lack) > 0:
		return degraded(name, detail, strings.Join(dedup(costs), "; "))
	}
	return ok(name, detail)
}

// userNamespace describes the user namespace this process is in, "" for
// the host's.
func userNamespace() string {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295" {
		return ""
	}
	return "in a user namespace (uid_map " + strings.Join(strings.Fields(string(b)), " ") + ")"
}

// memlockCheck: before Linux 5.11 BPF maps count against RLIMIT_MEMLOCK,
// which the collector raises (CAP_SYS_RESOURCE); later kernels charge the
// memory cgroup instead.
func memlockCheck(caps uint64) Check {
	const name = "memlock"
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &before); err != nil {
		return unknown(name, err.Error())
	}
	if before.Cur == unix.RLIM_INFINITY {
		return ok(name, "unlimited")
	}
	limit := bytesText(int64(before.Cur))
	if !canBPF(caps) {
		return unknown(name, "limit "+limit+"; whether BPF memory counts against it cannot be told without CAP_BPF")
	}
	err := rlimit.RemoveMemlock()
	var after unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_MEMLOCK, &after)
	switch {
	case err != nil:
		return missing(name, "limit "+limit+", and this kernel counts BPF memory against it; raising it was refused: "+err.Error(),
			noBPF+" (grant CAP_SYS_RESOURCE or raise the limit)")
	case after.Cur != before.Cur:
		return ok(name, "raised from "+limit+" to unlimited (this kernel counts BPF memory against it)")
	}
	return ok(name, "limit "+limit+" does not apply: the kernel charges BPF memory to the memory cgroup")
}

// bytesText prints a byte count in binary units.
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
