// Handoff (docs/assembly.md "Handoff"): a thread that holds one server
// request and wakes an idle thread of its process hands it the request's
// context; the woken thread's next call carries it, marked provisional
// (HANDOFF_BIT). After the call's response, the first thread holding a
// request that the worker wakes from a wait on a futex of its own (the one
// waiting for the result: a Java thread's parker, a Python waiter lock; not
// a lock many threads wait on, such as Python's GIL) gives the verdict: the
// same context confirms the handoff, another refutes it. User space keeps
// the call's span until the verdict (collector/causality).
#pragma once
#include "maps/handoffs.h"

#define HANDOFF_BIT (1ULL << 63)
#define HANDOFF_TTL_NS (2ULL * 1000000000ULL)
#define DIR_VERDICT 5 // event: a worker's verdict (len 1: confirmed, 0: refuted)

// holding returns the context id a thread holds unambiguously, or 0.
static __always_inline __u64 holding(__u64 thread, __u64 now)
{
	struct thread_ctx *t = bpf_map_lookup_elem(&threads, &thread);
	if (!t || t->open != 1 || t->ambiguous || now - t->ts > IDLE_NS)
		return 0;
	return t->id;
}

// handoff_call returns the provisional context of a worker's client
// message, or 0, and advances its state.
static __always_inline __u64 handoff_call(__u32 tid, __u8 dir, __u64 now)
{
	struct handoff *h = bpf_map_lookup_elem(&handoffs, &tid);
	if (!h || h->state == HANDOFF_NONE)
		return 0;
	if (now - h->ts > HANDOFF_TTL_NS) {
		h->state = HANDOFF_NONE;
		return 0;
	}
	if (dir == DIR_EGRESS) {
		if (h->state == HANDOFF_ARMED) {
			h->state = HANDOFF_CALLING;
			return h->ctx | HANDOFF_BIT;
		}
		if (h->state == HANDOFF_CALLING)
			return h->ctx | HANDOFF_BIT; // the rest of the request
		h->state = HANDOFF_NONE; // a second call without a new handoff
		return 0;
	}
	if (h->state == HANDOFF_CALLING || h->state == HANDOFF_ANSWERED) {
		h->state = HANDOFF_ANSWERED;
		return h->ctx | HANDOFF_BIT;
	}
	return 0;
}

static __always_inline void verdict(__u64 waker, __u32 wakee, __u64 ctx, __u8 confirmed)
{
	// On the stack, not in the per-CPU scratch event: a wake can come from
	// an interrupt while a syscall's event is being built there.
	__u64 buf[(EVENT_HDR_SIZE + 7) / 8] = {};
	struct event *e = (struct event *)buf;
	e->ts = bpf_ktime_get_ns();
	e->pid = waker >> 32;
	e->tid = (__u32)waker;
	e->sock_id = wakee;
	e->syscall_trace_id = ctx;
	e->len = confirmed;
	e->dir = DIR_VERDICT;
	if (bpf_ringbuf_output(&events, e, EVENT_HDR_SIZE, 0))
		count(STAT_DROP_RINGBUF);
}

// private_wait reports whether thread tid of process tgid waits on a futex
// no other thread waits on now.
static __always_inline int private_wait(__u32 tgid, __u32 tid)
{
	__u64 *addr = bpf_map_lookup_elem(&futex_wait, &tid);
	if (!addr)
		return 0;
	__u64 key = ((__u64)tgid << 32) ^ *addr;
	__u32 *n = bpf_map_lookup_elem(&futex_addrs, &key);
	return n && *n == 1;
}

#define FUTEX_WAIT 0
#define FUTEX_WAIT_BITSET 9
#define FUTEX_CMD_MASK 127

// task_in_scope: the current task's network namespace is traced.
static __always_inline int task_in_scope(void)
{
	if (!scope_enabled)
		return 1;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	return bpf_map_lookup_elem(&netns_scope, &netns) != NULL;
}

// futex_enter counts a thread waiting on a futex.
static __always_inline void futex_enter(__u64 uaddr, long op)
{
	long cmd = op & FUTEX_CMD_MASK;
	if (cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET)
		return;
	__u64 thread = bpf_get_current_pid_tgid();
	if ((thread >> 32) == self_tgid || !task_in_scope())
		return;
	__u32 tid = (__u32)thread;
	bpf_map_update_elem(&futex_wait, &tid, &uaddr, BPF_ANY);
	__u64 key = (thread & 0xffffffff00000000ULL) ^ uaddr;
	__u32 *n = bpf_map_lookup_elem(&futex_addrs, &key);
	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u32 one = 1;
		if (bpf_map_update_elem(&futex_addrs, &key, &one, BPF_NOEXIST) && (n = bpf_map_lookup_elem(&futex_addrs, &key)))
			__sync_fetch_and_add(n, 1);
	}
}

static __always_inline void futex_exit(void)
{
	__u64 thread = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)thread;
	__u64 *addr = bpf_map_lookup_elem(&futex_wait, &tid);
	if (!addr)
		return;
	__u64 key = (thread & 0xffffffff00000000ULL) ^ *addr;
	bpf_map_delete_elem(&futex_wait, &tid);
	__u32 *n = bpf_map_lookup_elem(&futex_addrs, &key);
	if (n && *n > 0)
		__sync_fetch_and_add(n, -1);
}

// on_waking: the current thread wakes p.
static __always_inline int waking(struct task_struct *p)
{
	__u64 waker = bpf_get_current_pid_tgid();
	__u32 tgid = waker >> 32;
	if (BPF_CORE_READ(p, tgid) != tgid || tgid == self_tgid)
		return 0; // handoffs stay inside one process
	__u32 wakee = BPF_CORE_READ(p, pid);
	__u32 wtid = (__u32)waker;
	__u64 now = bpf_ktime_get_ns();
	__u64 wakee_thread = ((__u64)tgid << 32) | wakee;
	struct handoff *w = bpf_map_lookup_elem(&handoffs, &wtid);
	if (w && w->state == HANDOFF_ANSWERED) {
		// The worker's first wake of a thread holding a request after the
		// call's response: the one waiting for the result.
		__u64 held = holding(wakee_thread, now);
		if (held && private_wait(tgid, wakee)) {
			verdict(waker, wakee, w->ctx, held == w->ctx);
			count(held == w->ctx ? STAT_CONFIRMED : STAT_REFUTED);
			w->state = HANDOFF_NONE;
		}
		return 0;
	}
	__u64 ctx = holding(waker, now);
	if (!ctx)
		return 0;
	struct thread_ctx *t = bpf_map_lookup_elem(&threads, &wakee_thread);
	if (t && t->open)
		return 0; // the wakee serves a request of its own
	struct handoff *h = bpf_map_lookup_elem(&handoffs, &wakee);
	if (h && h->state != HANDOFF_NONE && now - h->ts <= HANDOFF_TTL_NS)
		return 0; // only the wake that ends its idle wait counts
	struct handoff n = {.ctx = ctx, .ts = now, .waker = wtid, .state = HANDOFF_ARMED};
	bpf_map_update_elem(&handoffs, &wakee, &n, BPF_ANY);
	count(STAT_HANDOFFS);
	return 0;
}
