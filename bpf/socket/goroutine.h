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

// pt_regs_off is where a task's saved user registers lie from the base of
// its kernel stack (task_pt_regs: the stack's top less the pt_regs, the same
// offset for every task of the running kernel), taken from one
// bpf_task_pt_regs call; 0 until then.
__u64 pt_regs_off = 0;

// current_g returns the goroutine the task runs (R14 at its syscall or
// probe: Go's register ABI keeps g there), 0 outside Go code. The registers
// are found at task->stack + pt_regs_off and R14 read with one fault-safe
// load: the bpf_task_pt_regs helper call cost ~40 ns per message here
// (docs/capture.md "Issue 29, thirteenth round").
static __always_inline __u64 current_g(struct task_struct *task)
{
	__u64 stack = (__u64)task->stack;
	__u64 off = pt_regs_off;
	if (!off) {
		off = (__u64)bpf_task_pt_regs(task) - stack;
		pt_regs_off = off;
	}
	return kcast(stack + off, struct pt_regs)->r14;
}

// go_off returns the goid offset of the current thread's process when its
// goroutines are tracked (go_procs' value), else 0. The answer is cached in
// the thread's storage a until go_procs changes (an array lookup instead of
// a hash lookup per message: ~40 ns here).
static __always_inline __u16 go_off(__u32 tgid, struct active_io *a)
{
	__u32 want = gen_of(&go_gen) + 1;
	if (a->go_gen != want) {
		__u16 *off = bpf_map_lookup_elem(&go_procs, &tgid);
		a->go = off ? *off : 0;
		a->go_gen = want;
	}
	return a->go;
}

// thread_key is what holds requests for the current task: its goroutine in
// a tracked Go process, its thread elsewhere. A goroutine's key reads its
// goid from user memory (a bpf_probe_read_user, ~100-150 ns here), so
// causality asks for it only where the key is used (causality.h ctx_key).
static __always_inline __u64 thread_key(__u64 pid_tgid, struct active_io *a)
{
	__u32 tgid = pid_tgid >> 32;
	__u16 off = go_off(tgid, a);
	if (!off)
		return pid_tgid;
	__u64 k = go_key(tgid, current_g(bpf_get_current_task_btf()), off);
	return k ? k : pid_tgid;
}

// go_message reports whether a message of the current task is a
// goroutine's without reading its goid: its process is tracked and the
// task runs Go code (R14 holds a g). thread_key's key is a goroutine's in
// the same case, unless the goid at R14 is unreadable or 0 (a C thread of
// a Go program with some other value in R14, the runtime's g0).
static __always_inline int go_message(__u64 pid_tgid, struct active_io *a)
{
	return go_off(pid_tgid >> 32, a) && current_g(bpf_get_current_task_btf());
}
