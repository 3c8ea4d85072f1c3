//go:build linux

package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// noBPF is what the user loses when the capture's programs cannot load.
const noBPF = "no eBPF capture: the collector cannot load its programs"

// oldKernel is what a kernel that lacks a BPF feature costs.
const oldKernel = noBPF + " (it needs Linux 6.2 or newer with BTF)"

// kernelChecks: the kernel's version and lockdown mode, its BTF, the
// kfunc the programs read kernel structures with, and tracefs.
func kernelChecks() []Check {
	var out []Check
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		out = append(out, unknown("kernel", err.Error()))
	} else {
		detail := fmt.Sprintf("Linux %s (%s)", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]))
		lock := lockdown()
		if lock != "" {
			detail += ", lockdown " + lock
		}
		if lock == "confidentiality" {
			out = append(out, degraded("kernel", detail, "lockdown may refuse BPF programs that read kernel memory (see the programs check)"))
		} else {
			out = append(out, ok("kernel", detail))
		}
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		out = append(out, missing("btf", "no kernel BTF: "+err.Error(), oldKernel+"; its programs read kernel structures through BTF (CO-RE)"),
			unknown("kfunc bpf_rdonly_cast", "needs the kernel's BTF"))
	} else {
		detail := "kernel BTF"
		if fi, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
			detail = fmt.Sprintf("/sys/kernel/btf/vmlinux, %.1f MB", float64(fi.Size())/1e6)
		}
		out = append(out, ok("btf", detail))
		var fn *btf.Func
		if err := spec.TypeByName("bpf_rdonly_cast", &fn); err != nil {
			out = append(out, missing("kfunc bpf_rdonly_cast", "not in the kernel's BTF (Linux 6.2 has it)", oldKernel))
		} else {
			out = append(out, ok("kfunc bpf_rdonly_cast", "in the kernel's BTF (kernel structures read with plain loads)"))
		}
	}
	return append(out, tracefsCheck())
}

// lockdown is the kernel's lockdown mode ("" when it cannot be told).
func lockdown() string {
	b, err := os.ReadFile("/sys/kernel/security/lockdown")
	if err != nil {
		return ""
	}
	s := string(b)
	if i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']'); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return ""
}

// tracefsCheck: the tracepoints' ids are read from tracefs (or debugfs).
func tracefsCheck() Check {
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		_, err := os.Stat(d + "/events/syscalls")
		_, err2 := os.Stat(d + "/events")
		switch {
		case err == nil:
			return ok("tracefs", d+" (syscall tracepoints listed)")
		case errors.Is(err, fs.ErrPermission):
			return unknown("tracefs", d+": permission denied (root may read it)")
		case err2 == nil && errors.Is(err, fs.ErrNotExist):
			return missing("tracefs", d+"/events has no syscalls events (a kernel without CONFIG_FTRACE_SYSCALLS)",
				"no eBPF capture: the collector attaches to syscall tracepoints")
		}
	}
	return degraded("tracefs", "not mounted at /sys/kernel/tracing or /sys/kernel/debug/tracing",
		"the collector mounts it at start, which needs CAP_SYS_ADMIN; in a container mount the host's /sys/kernel/tracing")
}
