// Handoff (docs/assembly.md "Handoff"): a thread that holds one server
// request and wakes an idle thread of its process hands it the request's
// context; the woken thread's next call carries it, marked provisional
// (HANDOFF_BIT). After the call's response, the first thread holding a
// request that the worker wakes, through a futex only that thread has ever
// waited on (the one waiting for the result: a Java thread's parker, a
// Python waiter lock; not a lock many threads wait on, such as Python's GIL),
// gives the verdict: the same context confirms the handoff, another refutes
// it. User space keeps the call's span until the verdict
// (collector/causality).
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
static __always_inline __u64 handoff_call(__u64 worker, __u8 dir, __u64 now)
{
	struct handoff *h = bpf_map_lookup_elem(&handoffs, &worker);
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

// handoff_reader: a thread with no handoff of its own reads the response
// to a request sent with provisional context ctx: it answers for it (its
// next wake of a thread holding a request is the verdict).
static __always_inline __u64 handoff_reader(__u64 reader, __u64 ctx, __u64 now)
{
	struct handoff *h = bpf_map_lookup_elem(&handoffs, &reader);
	if (h && h->state != HANDOFF_NONE && now - h->ts <= HANDOFF_TTL_NS)
		return 0;
	struct handoff n = {.ctx = ctx & ~HANDOFF_BIT, .ts = now, .state = HANDOFF_ANSWERED};
	bpf_map_update_elem(&handoffs, &reader, &n, BPF_ANY);
	return ctx;
}

static __always_inline void verdict(__u64 waker, __u64 wakee, __u64 ctx, __u8 confirmed)
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
	if (bpf_ringbuf_output(&events, e, EVENT_HDR_SIZE, rb_flags(EVENT_HDR_SIZE)))
		count(STAT_DROP_RINGBUF);
}

// private_wake reports whether thread waker of process tgid is waking
// thread wakee with its own FUTEX_WAKE on the address the wakee, and only
// the wakee, waits on without a timeout: the handing back of a result (a
// Java thread's parker, a Python waiter lock), not a shared lock or a
// condition variable's timed wait (Python's GIL).
static __always_inline int private_wake(__u32 tgid, __u32 waker, __u32 wakee)
{
	struct futex_waiting *w = bpf_map_lookup_elem(&futex_wait, &wakee);
	__u64 *woken = bpf_map_lookup_elem(&futex_wake, &waker);
	if (!w || !woken || w->addr != *woken || w->timed)
		return 0;
	__u64 key = ((__u64)tgid << 32) ^ w->addr;
	__u32 *n = bpf_map_lookup_elem(&futex_addrs, &key);
	return n && *n == 1;
}

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
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

// futex_enter records a thread waiting on, or waking, a futex.
static __always_inline void futex_enter(__u64 uaddr, long op, __u64 timeout)
{
	long cmd = op & FUTEX_CMD_MASK;
	int wait = cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
	if (!wait && cmd != FUTEX_WAKE && cmd != FUTEX_WAKE_BITSET)
		return;
	__u64 thread = bpf_get_current_pid_tgid();
	if ((thread >> 32) == self_tgid || !task_in_scope())
		return;
	__u32 tid = (__u32)thread;
	if (!wait) {
		bpf_map_update_elem(&futex_wake, &tid, &uaddr, BPF_ANY);
		return;
	}
	struct futex_waiting fw = {.addr = uaddr, .timed = timeout != 0};
	bpf_map_update_elem(&futex_wait, &tid, &fw, BPF_ANY);
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
	bpf_map_delete_elem(&futex_wake, &tid);
	struct futex_waiting *w = bpf_map_lookup_elem(&futex_wait, &tid);
	if (!w)
		return;
	__u64 key = (thread & 0xffffffff00000000ULL) ^ w->addr;
	bpf_map_delete_elem(&futex_wait, &tid);
	__u32 *n = bpf_map_lookup_elem(&futex_addrs, &key);
	if (n && *n > 0)
		__sync_fetch_and_add(n, -1);
}

// wake applies a wake of wakee by waker (context keys) in process tgid:
// a handoff, or a worker's verdict. private: the wakee waits on something
// of its own (not a lock many wait on).
static __always_inline void wake(__u32 tgid, __u64 waker, __u64 wakee, int private)
{
	__u64 now = bpf_ktime_get_ns();
	struct handoff *w = bpf_map_lookup_elem(&handoffs, &waker);
	if (w && (w->state == HANDOFF_CALLING || w->state == HANDOFF_ANSWERED)) {
		// The worker's first wake of a thread holding a request after its
		// call began: the one waiting for the result (or, in Go's HTTP
		// Transport, for the request to be written).
		__u64 held = holding(wakee, now);
		if (held && private) {
			verdict(bpf_get_current_pid_tgid(), wakee, w->ctx, held == w->ctx);
			count(held == w->ctx ? STAT_CONFIRMED : STAT_REFUTED);
			w->state = HANDOFF_NONE;
		}
		return;
	}
	__u64 ctx = holding(waker, now);
	if (!ctx)
		return;
	struct thread_ctx *t = bpf_map_lookup_elem(&threads, &wakee);
	if (t && t->open)
		return; // the wakee serves a request of its own
	struct handoff *h = bpf_map_lookup_elem(&handoffs, &wakee);
	if (h && h->state != HANDOFF_NONE && now - h->ts <= HANDOFF_TTL_NS)
		return; // only the wake that ends its idle wait counts
	struct handoff n = {.ctx = ctx, .ts = now, .state = HANDOFF_ARMED};
	bpf_map_update_elem(&handoffs, &wakee, &n, BPF_ANY);
	count(STAT_HANDOFFS);
}

// waking: the current thread wakes p (sched_waking). Threads of tracked Go
// processes hold nothing: their goroutines do (goroutine.h).
static __always_inline int waking(struct task_struct *p)
{
	__u64 waker = bpf_get_current_pid_tgid();
	__u32 tgid = waker >> 32;
	if (BPF_CORE_READ(p, tgid) != tgid || tgid == self_tgid || bpf_map_lookup_elem(&go_procs, &tgid))
		return 0; // handoffs stay inside one process
	__u32 wakee = BPF_CORE_READ(p, pid);
	wake(tgid, waker, ((__u64)tgid << 32) | wakee, private_wake(tgid, (__u32)waker, wakee));
	return 0;
}

// go_send: goroutine g sends on a channel to the goroutine waiting on it
// (runtime.send(c, sg, ...): the waiting sudog in BX, its g first).
static __always_inline int go_send(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!bpf_map_lookup_elem(&go_procs, &tgid))
		return 0;
	__u64 sg = ctx->bx, g = ctx->r14, wg = 0;
	if (!sg || !g || bpf_probe_read_user(&wg, sizeof(wg), (void *)sg) || !wg)
		return 0;
	wake(tgid, goroutine_key(tgid, g), goroutine_key(tgid, wg), 1);
	return 0;
}
