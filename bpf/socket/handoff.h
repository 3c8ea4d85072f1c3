// Handoff (docs/assembly.md "Handoff"): a thread that holds one server
// request and wakes an idle thread of its process hands it the request's
// context for its next call. After the call's response, a thread holding a
// request that the worker wakes, through a futex only that thread waits on
// (the one waiting for the result, with a timeout or without: a Java
// thread's parker, a Python waiter lock; not a lock many threads wait on,
// nor a runtime's global such as Python's GIL, nor a wait that times out
// within a scheduler's switch interval), waiting since before the worker's
// last read, gives the verdict: the same context confirms the handoff.
//
// Every call of a thread holding no request carries a token of its own (a
// fresh id, unique per call), the handed context kept beside it.
//
// Claims: a call that no confirmed handoff covers (a saturated pool's worker
// takes its next task without sleeping; a woken worker took another
// request's task) is unbound. A wake of that kind by the worker, after it
// read the call's response, of a thread that was already waiting before the
// worker's last read (so not for a lock the worker took afterwards), claims
// the call for the woken thread's request. User space (collector/causality)
// keeps the call's span until its verdict, and links a claimed call only
// when exactly one request claimed it.
#pragma once
#include "ids.h"
#include "maps/handoffs.h"
#include "maps/serving.h"
#include "maps/active.h"
#include "maps/sockets.h"

#define HANDOFF_TTL_NS (2ULL * 1000000000ULL)
#define DIR_VERDICT 5 // event: a worker's verdict (len: VERDICT_*)
#define VERDICT_REFUTED 0
#define VERDICT_CONFIRMED 1
#define VERDICT_CLAIM 2
#define VERDICT_ITEM 3 // the call's worker took a work item put for owner (pyqueue.h)

// note_header fills the zeroed header e of a note: thread (pid_tgid) made
// it, dir says what it is (DIR_VERDICT, DIR_TASK, DIR_PROC), kind, sock_id
// and trace what about; named, when not NULL, is the task whose name (comm)
// it carries.
static __always_inline void note_header(struct event *e, __u8 dir, __u8 kind, __u64 thread, __u64 sock_id,
					__u64 trace, struct task_struct *named)
{
	e->ts = bpf_ktime_get_ns();
	e->pid = thread >> 32;
	e->tid = (__u32)thread;
	e->sock_id = sock_id;
	e->syscall_trace_id = trace;
	e->len = kind;
	e->dir = dir;
	if (named) {
		__u64 *c = (__u64 *)named->comm;
		__u64 w[2] = {c[0], c[1]};
		__builtin_memcpy(e->comm, w, sizeof(w));
	}
}

// note_named sends a header-only event of thread (pid_tgid) to user space:
// dir says what it is (DIR_VERDICT, DIR_TASK, DIR_PROC), kind, sock_id and
// trace what about; named, when not NULL, is the task whose name (comm) it
// carries.
static __always_inline void note_named(__u8 dir, __u8 kind, __u64 thread, __u64 sock_id, __u64 trace,
				       struct task_struct *named)
{
	// On the stack, not in the per-CPU scratch event: a wake can come from
	// an interrupt while a syscall's event is being built there.
	__u64 buf[(EVENT_HDR_SIZE + 7) / 8] = {};
	struct event *e = (struct event *)buf;
	note_header(e, dir, kind, thread, sock_id, trace, named);
	if (bpf_ringbuf_output(&events, e, EVENT_HDR_SIZE, rb_flags(0)))
		count(STAT_DROP_RINGBUF);
}

// note is note_named without a name.
static __always_inline void note(__u8 dir, __u8 kind, __u64 thread, __u64 sock_id, __u64 trace)
{
	note_named(dir, kind, thread, sock_id, trace, NULL);
}

// verdict reports worker waker's verdict on its call token: kind
// VERDICT_*, owner the context of the request the thread it woke holds.
static __always_inline void verdict(__u64 waker, __u64 owner, __u64 token, __u8 kind)
{
	note(DIR_VERDICT, kind, waker, owner, token);
}

// begin_call starts worker's call on socket sk with a token of its own (a
// fresh id: every call's token is unique, so a verdict names one call),
// handed: the context handed over with it, 0 when none (unbound); item: it
// came with a work item (pyqueue.h), which is its verdict. It returns the
// token with HANDOFF_BIT, or 0.
static __always_inline __u64 begin_call(struct thread_state *ts, __u64 worker, __u64 sk, __u64 handed, __u64 now, __u8 item)
{
	__u64 token = fresh_id();
	if (!token)
		return 0;
	struct handoff n = {.ctx = handed, .token = token, .sk = sk, .ts = now, .state = HANDOFF_CALLING,
			    .unbound = handed == 0, .item = item && handed};
	hand_set(worker, ts, &n);
	if (n.item)
		verdict(bpf_get_current_pid_tgid(), handed, token, VERDICT_ITEM);
	return token | HANDOFF_BIT;
}

// handoff_call returns the token of a worker's client message on socket sk
// (HANDOFF_BIT set), or 0, and advances its state; *handed is the context
// handed over with the call, if any. A call no handoff covers is unbound:
// a wake can later claim it, when its process serves requests and the
// worker never served one itself (pool: a pool's worker, not a server
// thread calling after it answered). A worker that moves a message on
// another socket while its call waits for its response multiplexes calls
// (an event loop, an HTTP client's selector thread): the call is refuted,
// so none of those calls takes a context. next: the message follows a
// response on its socket, so it begins a new call. The calls of a worker
// working on a work item put for one request (item, pyqueue.h) all carry
// it, each under a token of its own, until the worker takes its next item;
// several calls at once are not refuted. a: the current thread's syscall
// storage, which notes that its process serves no requests (a pool's call
// then skips the serving lookup until serving_gen moves).
static __always_inline __u64 handoff_call(struct thread_state *ts, struct active_io *a, __u64 worker, __u64 sk, __u8 dir, __u64 now, int pool, int next, __u64 *handed)
{
	struct handoff *h = hand_of(ts);
	// Ages are signed: a write's now is its entry's time (socket.bpf.c
	// exit_io), and another thread may have stamped h (a wake arming it)
	// or serving after it, while the write ran: such a stamp is not old.
	__s64 age = h ? (__s64)(now - h->ts) : 0;
	int item = h && h->item && h->state != HANDOFF_NONE && age <= (__s64)IDLE_NS;
	int live = item || (h && h->state != HANDOFF_NONE && age <= (__s64)HANDOFF_TTL_NS);
	if (item && dir == DIR_EGRESS) {
		*handed = h->ctx;
		if (h->state == HANDOFF_CALLING && h->sk == sk && !next)
			return h->token | HANDOFF_BIT; // the rest of the request
		return begin_call(ts, worker, sk, h->ctx, now, 1);
	}
	if (live && !item && h->state == HANDOFF_CALLING && h->sk != sk) {
		verdict(bpf_get_current_pid_tgid(), 0, h->token, VERDICT_REFUTED);
		count(STAT_REFUTED);
		h->state = HANDOFF_NONE;
		live = 0;
	}
	if (dir == DIR_EGRESS) {
		if (live && h->state == HANDOFF_ARMED) {
			*handed = h->ctx;
			return begin_call(ts, worker, sk, h->ctx, now, 0);
		}
		if (live && h->state == HANDOFF_CALLING && !next) {
			*handed = h->unbound ? 0 : h->ctx;
			return h->token | HANDOFF_BIT; // the rest of the request
		}
		// A call after the last one's response without a new handoff (its
		// token is the last call's no more, even if another thread read
		// that response).
		if (h)
			h->state = HANDOFF_NONE;
		if (!pool)
			return 0;
		// A process that never served (a client: a curl, a load
		// generator) finds no entry, and notes it: its threads' next
		// calls look nothing up until serving gains an entry (read
		// before the lookup, so that an entry made after it moves it;
		// issue 29, sixteenth round).
		__u32 want = serving_gen_want();
		if (a->serving_none == want)
			return 0;
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		__u64 *last = bpf_map_lookup_elem(&serving, &tgid);
		if (!last) {
			a->serving_none = want;
			return 0;
		}
		if ((__s64)(now - *last) > (__s64)IDLE_NS)
			return 0;
		return begin_call(ts, worker, sk, 0, now, 0);
	}
	if (live && (h->state == HANDOFF_CALLING || h->state == HANDOFF_ANSWERED) && h->sk == sk) {
		h->answered = now;
		h->state = HANDOFF_ANSWERED;
		return h->token | HANDOFF_BIT;
	}
	return 0;
}

// handoff_reader: a thread with no handoff of its own reads the response
// to another thread's call (token, with the context handed over with it):
// it answers for it (its next wake of a thread holding a request is the
// verdict).
static __always_inline __u64 handoff_reader(struct thread_state *ts, __u64 reader, __u64 sk, __u64 token, __u64 handed, __u64 now)
{
	struct handoff *h = hand_of(ts);
	// A goroutine armed by a request but making no call reads for it all
	// the same: Go's Transport's read goroutine, armed by its last caller's
	// report that it read the body to the end (it never calls; its next
	// wake of a request is the response handed to the caller).
	if (h && h->state != HANDOFF_NONE && now - h->ts <= HANDOFF_TTL_NS &&
	    !(h->state == HANDOFF_ARMED && (reader & GOROUTINE_KEY)))
		return 0;
	struct handoff n = {.ctx = handed, .token = token & ~HANDOFF_BIT, .sk = sk, .ts = now, .answered = now,
			    .state = HANDOFF_ANSWERED, .unbound = handed == 0, .reader = 1};
	hand_set(reader, ts, &n);
	return token;
}

// private_wake reports whether the current thread, of process tgid, is
// waking thread wakee with its own FUTEX_WAKE on the address the wakee, and
// only the wakee, waits on, for longer than a switch interval: the handing
// back of a result (a Java thread's parker, a Python waiter lock, with or
// without a timeout), not a shared lock nor a scheduler's brief timed wait
// (runtime_global below rules out the rest, only when a verdict depends on
// it). It returns when the wakee's wait began, or 0.
static __always_inline __u64 private_wake(__u32 tgid, struct task_struct *wakee)
{
	struct futex_state *w = bpf_task_storage_get(&futexes, wakee, 0, 0);
	struct futex_state *k = bpf_task_storage_get(&futexes, bpf_get_current_task_btf(), 0, 0);
	if (!w || !k || !w->waiting || !k->waking || w->addr != k->woken || w->brief)
		return 0;
	__u64 key = ((__u64)tgid << 32) ^ w->addr;
	__u32 *n = bpf_map_lookup_elem(&futex_addrs, &key);
	return n && *n == 1 ? w->since : 0;
}

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_CMD_MASK 127
#define FUTEX_CLOCK_REALTIME 256

// SWITCH_NS: a timed wait that times out this soon is a scheduler's (a
// runtime's switch interval: CPython waits 5 ms for the GIL before it asks
// its holder to drop it), not a wait for a result, which gives the work
// seconds. Waits for results come with timeouts or without (Java's
// Future.get(timeout), Python's result(timeout=...)); the timeout alone
// does not tell them apart.
#define SWITCH_NS (20ULL * 1000000ULL)

// brief_wait reports whether a futex wait with timeout (a user pointer,
// 0: none) times out within SWITCH_NS: FUTEX_WAIT's timeout is relative,
// FUTEX_WAIT_BITSET's an absolute time on CLOCK_MONOTONIC, or on
// CLOCK_REALTIME with FUTEX_CLOCK_REALTIME (realtime_offset_ns: the
// difference at load). An unreadable timeout counts as brief.
static __always_inline __u8 brief_wait(long op, __u64 timeout, __u64 now)
{
	if (!timeout)
		return 0;
	struct __kernel_timespec ts = {};
	if (bpf_probe_read_user(&ts, sizeof(ts), (void *)timeout) || ts.tv_sec < 0 || ts.tv_nsec < 0)
		return 1;
	__s64 t = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	if ((op & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) {
		if (op & FUTEX_CLOCK_REALTIME)
			t -= realtime_offset_ns;
		t -= (__s64)now;
	}
	return t <= (__s64)SWITCH_NS;
}

// task_in_scope: the current task's network namespace is traced.
static __always_inline int task_in_scope(void)
{
	if (!scope_enabled)
		return 1;
	__u32 netns = bpf_get_current_task_btf()->nsproxy->net_ns->ns.inum;
	return bpf_map_lookup_elem(&netns_scope, &netns) != NULL;
}

// task_traced: the current task (thread, its pid_tgid) is not the
// collector's and its network namespace is traced.
static __always_inline int task_traced(__u64 thread)
{
	return (thread >> 32) != self_tgid && task_in_scope();
}

// RESUME_NS: how soon after a worker's read of its call's response (or the
// end of such a wait) a wait on a runtime global counts as regaining it.
#define RESUME_NS 20000ULL

// file_backed (a bpf_find_vma callback) reports whether the address lies in
// a file-backed mapping: a program's or library's data, not its heap.
static long file_backed(struct task_struct *task, struct vm_area_struct *vma, void *global)
{
	*(__u8 *)global = vma->vm_file != NULL;
	return 0;
}

// file_mapped reports whether futex address addr of the current process is
// a runtime's global (Python's GIL and its switch condition: in the
// program's or a library's data, not on its heap); 1 when unknown.
static __always_inline __u8 file_mapped(__u64 addr)
{
	__u8 global = 1;
	bpf_find_vma(bpf_get_current_task_btf(), addr, file_backed, &global, 0);
	return global;
}

// futex_enter records a thread waiting on, or waking, a futex.
static __always_inline void futex_enter(__u64 uaddr, long op, __u64 timeout)
{
	long cmd = op & FUTEX_CMD_MASK;
	int wait = cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
	if (!wait && cmd != FUTEX_WAKE && cmd != FUTEX_WAKE_BITSET)
		return;
	__u64 thread = bpf_get_current_pid_tgid();
	if (!task_traced(thread))
		return;
	struct futex_state *fs = bpf_task_storage_get(&futexes, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!fs)
		return;
	if (!wait) {
		fs->woken = uaddr;
		fs->waking = 1;
		return;
	}
	__u64 now = bpf_ktime_get_ns();
	fs->addr = uaddr;
	fs->since = now;
	fs->brief = brief_wait(op, timeout, now);
	fs->resuming = 0;
	// A worker that begins to wait for the GIL right after reading its
	// call's response is regaining it, running no code of its own in
	// between: the wait extends the read.
	struct handoff *h = hand_of(thread_of(thread));
	if (h && h->state == HANDOFF_ANSWERED && now - h->answered <= RESUME_NS)
		fs->resuming = file_mapped(uaddr);
	fs->waiting = 1;
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
	struct futex_state *w = bpf_task_storage_get(&futexes, bpf_get_current_task_btf(), 0, 0);
	if (!w)
		return;
	w->waking = 0;
	if (!w->waiting)
		return;
	w->waiting = 0;
	__u64 thread = bpf_get_current_pid_tgid();
	if (w->resuming) {
		struct handoff *h = hand_of(thread_of(thread));
		if (h && h->state == HANDOFF_ANSWERED)
			h->answered = bpf_ktime_get_ns();
	}
	__u64 key = (thread & 0xffffffff00000000ULL) ^ w->addr;
	__u32 *n = bpf_map_lookup_elem(&futex_addrs, &key);
	if (n && *n > 0)
		__sync_fetch_and_add(n, -1);
}

// runtime_global reports whether the futex thread wakee waits on is a
// runtime's global (file_mapped; the wakee is of the current process).
static __always_inline int runtime_global(struct task_struct *wakee)
{
	struct futex_state *w = wakee ? bpf_task_storage_get(&futexes, wakee, 0, 0) : NULL;
	return !w || !w->waiting || file_mapped(w->addr);
}

// call_answered reports whether the call h of a goroutine that a request
// wakes is answered: its socket's response came (read by another goroutine:
// Go's Transport's write goroutine never reads). The goroutine's verdict on
// it never came (its caller was not yet waiting for the report of the
// write); a goroutine woken over a channel takes the value sent, so the
// wake hands it the request as if it were idle.
static __always_inline int call_answered(const struct handoff *h)
{
	if (h->state != HANDOFF_CALLING)
		return 0;
	struct sock_state *s = bpf_map_lookup_elem(&sockets, &h->sk);
	return s && s->replied;
}

// A goroutine's wake: private (a channel send to one receiver), but when the
// receiver began to wait is unknown, so it claims nothing.
#define WAIT_UNKNOWN (~0ULL)

// wake applies a wake of wakee by waker (context keys) in process tgid,
// wts the waker's entry: a handoff, or a worker's verdict. p: the woken
// thread, NULL for a goroutine. A waker with no entry holds no request and
// waits for no answer, so its wakes (most of a host's) stop at that lookup.
static __always_inline void wake(__u32 tgid, __u64 waker, struct thread_state *wts, __u64 wakee, struct task_struct *p)
{
	if (!wts)
		return;
	__u64 now = bpf_ktime_get_ns();
	struct handoff *w = hand_of(wts);
	if (w && w->item && w->state != HANDOFF_NONE)
		return; // its calls' verdict came with its work item
	if (w && (w->state == HANDOFF_CALLING || w->state == HANDOFF_ANSWERED) &&
	    now - (w->answered > w->ts ? w->answered : w->ts) <= HANDOFF_TTL_NS) {
		// The worker's wake of a thread holding a request after its call
		// began: the one waiting for the result (or, in Go's HTTP
		// Transport, for the request to be written). since: when the
		// wakee began to wait on something of its own (not a lock many
		// wait on), 0 when it does not.
		__u64 since = p ? private_wake(tgid, p) : WAIT_UNKNOWN;
		if (!since)
			return;
		__u64 owner = held(thread_of(wakee), now);
		if (!owner)
			return;
		__u64 id = bpf_get_current_pid_tgid();
		int go = since == WAIT_UNKNOWN;
		// A result handed back: the woken thread was waiting since before
		// the worker's last read of the response (or the end of its
		// regaining the GIL right after it), so not for a lock the worker
		// took after its call (it would have to hold it across that read),
		// and not on a runtime's global. A goroutine's wait start is
		// unknown (below).
		if (!go && !(w->state == HANDOFF_ANSWERED && since <= w->answered && !runtime_global(p)))
			return;
		if (!w->unbound && owner == w->ctx) {
			verdict(id, owner, w->token, VERDICT_CONFIRMED);
			count(STAT_CONFIRMED);
			w->state = HANDOFF_NONE;
			return;
		}
		if (go) {
			// Only a goroutine's first such wake after writing a call
			// claims it (Go's HTTP Transport: the write goroutine
			// reporting the write to the caller); a reader's later wakes
			// hand idle connections to other requests.
			if (!w->unbound) {
				verdict(id, owner, w->token, VERDICT_REFUTED);
				count(STAT_REFUTED);
			} else if (!w->reader) {
				verdict(id, owner, w->token, VERDICT_CLAIM);
				count(STAT_CLAIMS);
			}
			w->state = HANDOFF_NONE;
			return;
		}
		// The result went to another request than the one that handed
		// over the context (or none did): that request claims the call,
		// and so does any other the worker hands a result to before its
		// next call (the guard then links it to neither).
		if (!w->unbound)
			count(STAT_REFUTED);
		w->unbound = 1;
		verdict(id, owner, w->token, VERDICT_CLAIM);
		count(STAT_CLAIMS);
		return;
	}
	__u64 ctx = held(wts, now);
	if (!ctx)
		return;
	struct thread_state *ets = thread_of(wakee);
	if (ets && ets->req.open)
		return; // the wakee serves a request of its own
	struct handoff *h = hand_of(ets);
	if (h && h->item && h->state != HANDOFF_NONE)
		return; // working on a work item's request
	if (h && h->state != HANDOFF_NONE && now - h->ts <= HANDOFF_TTL_NS &&
	    !(h->unbound && h->state == HANDOFF_ANSWERED) && !(!p && call_answered(h)))
		return; // only the wake that ends its idle wait counts
	struct handoff n = {.ctx = ctx, .ts = now, .state = HANDOFF_ARMED};
	hand_set(wakee, ets, &n);
	count(STAT_HANDOFFS);
}

// waking: the current thread wakes p (sched_waking). Threads of tracked Go
// processes hold nothing: their goroutines do (goroutine.h).
static __always_inline int waking(struct task_struct *p)
{
	__u64 waker = bpf_get_current_pid_tgid();
	__u32 tgid = waker >> 32;
	if (p->tgid != tgid || tgid == self_tgid)
		return 0; // handoffs stay inside one process
	struct thread_state *wts = thread_of(waker);
	if (!wts || bpf_map_lookup_elem(&go_procs, &tgid))
		return 0;
	wake(tgid, waker, wts, ((__u64)tgid << 32) | (__u32)p->pid, p);
	return 0;
}

// go_send: goroutine g sends on a channel to the goroutine waiting on it
// (runtime.send(c, sg, ...): the waiting sudog in BX, its g first). Both are
// keyed by their goids (goroutine.h goroutine_key).
static __always_inline int go_send(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u16 *off = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!off)
		return 0;
	__u64 sg = ctx->bx, g = ctx->r14, wg = 0;
	if (!sg || !g || bpf_probe_read_user(&wg, sizeof(wg), (void *)sg) || !wg)
		return 0;
	__u64 gk = go_key(tgid, g, *off), wk = go_key(tgid, wg, *off);
	if (!gk || !wk)
		return 0;
	wake(tgid, gk, thread_of(gk), wk, NULL);
	return 0;
}
