// Goroutines (docs/assembly.md "Go"): Go's scheduler runs a request's
// goroutine on any thread, so in a Go process the unit that holds a request
// is the goroutine, not the thread. Go's register ABI keeps the running
// goroutine (g) in R14, also at the syscall instruction; a uprobe on
// runtime.send sees the sending goroutine in R14 and the receiver it wakes
// (sudog.g, the sudog's first field) in BX.
#pragma once
#include "maps/goprocs.h"
#include "maps/active.h"

#define GOROUTINE_KEY (1ULL << 63)

// goroutine_key is the context key of the goroutine whose id is goid in
// process tgid: never a pid_tgid (bit 63 set). Keyed by the goid, not by the
// g's address: the runtime keeps a dead goroutine's g for the next goroutine
// it starts, which must not inherit its predecessor's state (Go's HTTP
// Transport: a connection's read goroutine reusing the g of the goroutine
// that did its TLS handshake took that handshake's call as its own), while
// goids are never reused in a process. A dead goroutine's entry stays until
// the LRU evicts it.
static __always_inline __u64 goroutine_key(__u32 tgid, __u64 goid)
{
	return GOROUTINE_KEY | ((goid ^ ((__u64)tgid << 40)) & ~GOROUTINE_KEY);
}

// goid_of returns the goid of goroutine g, read at g + off (off: the offset
// of runtime.g.goid in the process's executable, go_procs' value), 0 when
// unreadable (goids start at 1).
static __always_inline __u64 goid_of(__u64 g, __u16 off)
{
	__u64 goid = 0;
	if (!g || !off || bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + off)))
		return 0;
	return goid;
}

// go_key returns the context key of goroutine g of process tgid, whose
// runtime.g.goid offset is off; 0 when its goid is unreadable.
static __always_inline __u64 go_key(__u32 tgid, __u64 g, __u16 off)
{
	__u64 goid = goid_of(g, off);
	return goid ? goroutine_key(tgid, goid) : 0;
}

// current_g returns the goroutine the task runs (R14 at its syscall or
// probe: Go's register ABI keeps g there), 0 outside Go code. The helper's
// result is a BTF-typed pointer: a plain, fault-safe load reads the
// register (a bpf_probe_read_kernel call cost ~20-30 ns more).
static __always_inline __u64 current_g(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	return regs->r14;
}

// thread_key is what holds requests for the current task: its goroutine in
// a tracked Go process, its thread elsewhere. Whether the process is listed,
// and its goid offset, is cached in the thread's storage a until go_procs
// changes (an array lookup instead of a hash lookup per message: ~40 ns
// here).
static __always_inline __u64 thread_key(__u64 pid_tgid, struct active_io *a)
{
	__u32 tgid = pid_tgid >> 32;
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&go_gen, &zero);
	__u32 want = (gen ? *gen : 0) + 1;
	if (a->go_gen != want) {
		__u16 *off = bpf_map_lookup_elem(&go_procs, &tgid);
		a->go = off ? *off : 0;
		a->go_gen = want;
	}
	if (!a->go)
		return pid_tgid;
	__u64 k = go_key(tgid, current_g(bpf_get_current_task_btf()), a->go);
	return k ? k : pid_tgid;
}
