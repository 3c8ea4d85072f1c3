// Request causality (docs/assembly.md "Syscall context"): every message gets
// the context id of the server request it belongs to, or 0 when the thread
// gives no unambiguous answer.
//
// - A server socket's request (ingress after the socket's last response, or
//   its first message) takes a fresh id; the socket keeps it until its
//   response begins, and every message of that exchange carries it.
// - The receiving thread holds the request open. While a thread holds exactly
//   one open request and has not held two at once since it last held none,
//   its client messages (calls it makes) carry that request's id.
// - Otherwise client messages carry 0: a thread multiplexing requests (an
//   event loop), a pool worker that never received a request, a thread after
//   it answered. No id is ever carried from one request into the next, so a
//   shared id means one request.
#pragma once
#include "maps/threads.h"
#include "ids.h"
#include "maps/sockets.h"
#include "goroutine.h"
#include "handoff.h"
#include "pyqueue.h"
#include "asyncio.h"
#include "nodeasync.h"

// set_role records a socket's role learnt from accept/connect.
static __always_inline void set_role(__u64 sk, __u8 role)
{
	struct sock_state s = {.role = role};
	bpf_map_update_elem(&sockets, &sk, &s, BPF_ANY);
}

// release ends a server request held open by a thread.
static __always_inline void release(__u64 thread)
{
	struct thread_state *ts = thread_of(thread);
	if (!ts)
		return;
	struct thread_ctx *t = &ts->req;
	if (t->open > 0)
		t->open--;
	if (t->open == 0) {
		t->id = 0;
		t->ambiguous = 0;
	}
}

// sock_closed forgets a socket, releasing a request it held open.
static __always_inline void sock_closed(__u64 sk)
{
	struct sock_state *s = bpf_map_lookup_elem(&sockets, &sk);
	if (!s)
		return;
	if (s->open)
		release(s->thread);
	if (!bpf_map_delete_elem(&sockets, &sk))
		sockets_moved(); // threads' copies of verdicts (l7.h)
}

#define GOROUTINE_BIT (1ULL << 62) // the id was kept by a goroutine, not a thread

// SERVING_NS: a thread rewrites its process's serving time (maps/serving.h)
// at most this often (a server request less than this after its own last
// write looks nothing up). The time read is then up to SERVING_NS early,
// against the IDLE_NS (10 s) it is compared with (handoff.h handoff_call):
// a pool's call at the idle window's edge may then carry no token (a
// missing link, never a wrong one).
#define SERVING_NS (1ULL << 20) // ~1 ms

// serving_mark records that the current process began serving a request at
// now; a: the current thread's syscall storage, which remembers when it last
// wrote it.
static __always_inline void serving_mark(struct active_io *a, __u64 now)
{
	if (a->serving_ts && now - a->serving_ts < SERVING_NS)
		return;
	a->serving_ts = now;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 *last = bpf_map_lookup_elem(&serving, &tgid);
	if (last) {
		*last = now;
		return;
	}
	bpf_map_update_elem(&serving, &tgid, &now, BPF_ANY);
	// After the update: a thread that found no entry before it sees
	// the bump at its next call (handoff.h handoff_call).
	gen_bump(&serving_gen);
}

// ctx_key returns the context key of the current task (pid_tgid: its ids;
// a: its syscall storage; goroutine.h thread_key) and notes in *gor whether
// it is a goroutine's.
static __always_inline __u64 ctx_key(__u64 pid_tgid, struct active_io *a, __u8 *gor)
{
	__u64 k = thread_key(pid_tgid, a);
	*gor = (k & GOROUTINE_KEY) != 0;
	return k;
}

// causality returns the context id of a message moved by the current task
// (pid_tgid: its ids) on socket sk; *cont: it moves bytes in the same
// direction as the socket's previous message syscall (bodies.h). a: the
// current thread's syscall storage (maps/active.h): its RT_* bits tell which
// runtime storage it may have, and it keeps serving_mark's time.
// *made: the socket had no state (set when made here). now: the
// message's time (a write's is its entry's: socket.bpf.c exit_io), or 0
// when the caller has not read the clock (a server's response needs none;
// read here for the paths that do). *gor: the message is a goroutine's (the
// caller marks a non-zero id with GOROUTINE_BIT). The task's context key
// (thread or goroutine: ctx_key) is made only on the paths that use it, a
// server's request and a client's message: a goroutine's key reads its goid
// from user memory. A server's response and the rest of its request use the
// socket's context and take *gor from go_message.
static __always_inline __u64 causality(__u64 pid_tgid, __u64 sk, __u8 dir, __u64 now, __u8 *cont, struct active_io *a,
				       __u8 *made, __u8 *gor)
{
	__u8 rt = a->rt;
	struct sock_state *s = bpf_map_lookup_elem(&sockets, &sk);
	if (!s) {
		*made = 1;
		struct sock_state n = {.role = dir == DIR_INGRESS ? ROLE_SERVER : ROLE_CLIENT};
		bpf_map_update_elem(&sockets, &sk, &n, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&sockets, &sk);
		if (!s)
			return 0;
	}
	*cont = s->last_dir == dir + 1;
	s->last_dir = dir + 1;
	if (s->role == ROLE_SERVER) {
		if (dir == DIR_EGRESS || s->open)
			*gor = go_message(pid_tgid, a);
		if (dir == DIR_EGRESS) {
			if (s->open) {
				s->open = 0;
				release(s->thread);
				if (rt & RT_PY) // only such a thread has the storage (asyncio.h)
					task_answer(s->ctx);
			}
			return s->ctx;
		}
		struct node_turn *nt = rt & RT_NODE ? node_turn() : NULL;
		if (s->open) {
			if (nt)
				node_read(nt, s->ctx);
			return s->ctx; // the rest of the same request
		}
		__u64 thread = ctx_key(pid_tgid, a, gor);
		__u64 id = fresh_id();
		if (nt)
			node_read(nt, id);
		serving_mark(a, now);
		s->ctx = id;
		s->open = 1;
		s->thread = thread;
		struct thread_state *ts = thread_of(thread);
		if (!ts) {
			struct thread_state n = {.req = {.id = id, .ts = now, .open = 1}};
			bpf_map_update_elem(&threads, &thread, &n, BPF_ANY);
			return id;
		}
		// A worker that now serves a request of its own answers for no
		// earlier call any more.
		ts->hand.state = HANDOFF_NONE;
		struct thread_ctx *t = &ts->req;
		if (now - t->ts > IDLE_NS) {
			// a request never answered nor closed (or none ever
			// received): start over
			t->open = 0;
			t->ambiguous = 0;
		}
		t->open++;
		if (t->open > 1)
			t->ambiguous = 1;
		t->id = id;
		t->ts = now;
		return id;
	}
	if (!now)
		now = bpf_ktime_get_ns();
	__u64 thread = ctx_key(pid_tgid, a, gor);
	// An event loop's thread (asyncio.h): its tasks' calls, never the
	// requests the thread holds (it reads them all).
	struct py_running *r = rt & RT_PY ? running() : NULL;
	if (r && r->loop) {
		__u8 next = dir == DIR_EGRESS && s->replied;
		s->replied = dir == DIR_INGRESS;
		return task_call(r, s, dir, next);
	}
	// A Node.js event loop's thread (nodeasync.h): its turns.
	struct node_turn *nt = rt & RT_NODE ? node_turn() : NULL;
	if (nt && nt->loop) {
		__u8 next = dir == DIR_EGRESS && s->replied;
		s->replied = dir == DIR_INGRESS;
		if (dir == DIR_INGRESS && nt->depth == 0)
			nt->cause = 0; // another read: the next turn is its callback
		return node_call(nt, s, dir, next);
	}
	struct thread_state *ts = thread_of(thread);
	struct thread_ctx *t = ts ? &ts->req : NULL;
	if (t && t->open) {
		if (t->open != 1 || t->ambiguous || now - t->ts > IDLE_NS)
			return 0;
		return t->id;
	}
	// A worker (handoff.h). A client socket remembers the context its
	// request was sent with, for a reader that is not the sender (Go's
	// HTTP Transport reads responses on a goroutine of its own).
	// A request after a response on the socket is a new call, whoever read
	// the response (Go's Transport writes the next request on the same
	// write goroutine, which never reads).
	__u8 next = dir == DIR_EGRESS && s->replied;
	s->replied = dir == DIR_INGRESS;
	__u64 handed = 0;
	// A pool's worker: a thread that never received a server request.
	int pool = !t || t->ts == 0;
	__u64 id = handoff_call(ts, a, thread, sk, dir, now, pool, next, &handed);
	if (dir == DIR_EGRESS) {
		s->ctx = id;
		s->handed = handed;
	} else if (!id && s->ctx) {
		id = handoff_reader(ts, thread, sk, s->ctx, s->handed, now);
	}
	return id;
}
