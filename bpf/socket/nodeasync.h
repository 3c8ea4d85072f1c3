// Node.js (docs/assembly.md "Node.js"): one event loop runs every request's
// JavaScript on one thread, in turns: libuv reads a socket, then runs the
// callback of the resource that consumes it (a connection's HTTP parser)
// inside a node::InternalCallbackScope, whose Close() also runs the ticks
// (process.nextTick) and microtasks the callback queued. Uprobes on the
// node binary's exported callback-scope machinery follow the turns:
//
//   - a turn whose callback belongs to the resource that consumed a server
//     request just read works for that request (the handler runs there, and
//     so do the ticks it queues: an http.Agent writes a request on a
//     kept-alive socket in one);
//   - a client socket connected during such a turn remembers the request,
//     and its first request, written later when the connection completes
//     (a turn of its own), carries it;
//   - every other turn (a response's callback, a timer, an immediate)
//     works for none: there a callback of one request may run another's
//     work (an agent hands a freed socket to a queued request), so it gives
//     nothing.
//
// A call carries the request's id with NODE_BIT (user space strips it and
// names the evidence); the response of the call carries the same.
#pragma once
#include "ids.h"
#include "maps/sockets.h"
#include "maps/nodeturns.h"
#include "maps/nodewraps.h"
#include "maps/active.h"

#define SOCK_NODE_CONNECTED 2 // sock_state.task: connected during a turn working for ctx
#define SOCK_NODE_CALL 3      // sock_state.task: its call was written for ctx (0: none)
#define NODE_CTX_CX 0 // the uprobe's cookie: the Environment constructor's async_context& in CX (Node.js 18, 20)
#define NODE_CTX_R8 1 // ...in R8 (Node.js 22: its object is a std::variant, two registers)

static __always_inline struct node_turn *node_turn(void)
{
	return bpf_task_storage_get(&node_turns, bpf_get_current_task_btf(), 0, 0);
}

// node_turn_make returns the current thread's turn state, created (and the
// thread's RT_NODE bit set, maps/active.h) when missing.
static __always_inline struct node_turn *node_turn_make(void)
{
	struct node_turn *t = node_turn();
	if (!t && rt_mark(RT_NODE))
		t = bpf_task_storage_get(&node_turns, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	return t;
}

// scope_begin: a callback scope (object this) opens on the current thread,
// for the callback of AsyncWrap wrap (0: none, such as a timer's). The
// outermost one begins a turn: for a wrap that consumes a server request the
// loop just read, that request.
static __always_inline int scope_begin(__u64 this, __u64 wrap)
{
	if (!task_traced(bpf_get_current_pid_tgid()))
		return 0;
	struct node_turn *t = node_turn_make();
	if (!t)
		return 0;
	t->loop = 1;
	t->next_wrap = 0;
	if (t->depth == 0) {
		struct node_wrap k = {.wrap = wrap, .tgid = bpf_get_current_pid_tgid() >> 32};
		if (wrap && t->cause)
			bpf_map_update_elem(&node_wraps, &k, &t->cause, BPF_ANY);
		__u64 *ctx = wrap ? bpf_map_lookup_elem(&node_wraps, &k) : NULL;
		t->ctx = ctx ? *ctx : 0;
		t->cause = 0;
		t->lost = 0;
	}
	__u8 d = t->depth;
	if (d >= NODE_SCOPES) {
		t->lost = 1;
		return 0;
	}
	t->scopes[d & (NODE_SCOPES - 1)] = this;
	t->depth = d + 1;
	return 0;
}

// node_scope_close: InternalCallbackScope::Close(this) begins (a second
// Close of a scope returns at once).
static __always_inline int node_scope_close(__u64 this)
{
	struct node_turn *t = node_turn();
	if (!t)
		return 0;
	__u8 n = t->ncl;
	if (n >= NODE_SCOPES) {
		t->lost = 1;
		return 0;
	}
	t->closing[n & (NODE_SCOPES - 1)] = this;
	t->ncl = n + 1;
	return 0;
}

// node_scope_closed: the innermost Close() returned: its scope, if open,
// ends with every scope opened inside it; the turn ends with the outermost.
static __always_inline int node_scope_closed(void)
{
	struct node_turn *t = node_turn();
	if (!t || t->ncl == 0)
		return 0;
	__u8 n = t->ncl - 1;
	__u64 this = t->closing[n & (NODE_SCOPES - 1)];
	t->ncl = n;
	for (int i = NODE_SCOPES - 1; i >= 0; i--) {
		if (i < t->depth && t->scopes[i] == this) {
			t->depth = i;
			break;
		}
	}
	if (t->depth == 0)
		t->ctx = 0;
	return 0;
}

// node_turn_ctx returns the request the current turn works for, 0 when none
// is known (t: the thread's state).
static __always_inline __u64 node_turn_ctx(struct node_turn *t)
{
	return t->depth && !t->lost ? t->ctx : 0;
}

// node_read: the loop thread (t) read server request ctx (fresh or the rest
// of it) outside any turn: the next turn's callback consumes it. Any other
// read outside a turn is another callback's cause.
static __always_inline void node_read(struct node_turn *t, __u64 ctx)
{
	if (t->depth == 0)
		t->cause = ctx;
}

// node_connected: a client socket (s) connected by the loop thread (t).
static __always_inline void node_connected(struct node_turn *t, struct sock_state *s)
{
	__u64 ctx = node_turn_ctx(t);
	s->ctx = ctx;
	s->task = ctx ? SOCK_NODE_CONNECTED : 0;
}

// node_call returns the context of a client message moved by a Node.js
// loop's thread (t) on socket s; next: a request after a response on it.
// A new request takes its turn's request, or, for the first request on a
// socket connected during a request's turn and written in a turn that
// works for none (the connection's completion), that request's.
static __always_inline __u64 node_call(struct node_turn *t, struct sock_state *s, __u8 dir, __u8 next)
{
	if (dir == DIR_INGRESS || (s->task == SOCK_NODE_CALL && !next))
		return s->task == SOCK_NODE_CALL && s->ctx ? s->ctx | NODE_BIT : 0;
	__u64 ctx = node_turn_ctx(t);
	if (s->task == SOCK_NODE_CONNECTED && !next && (!ctx || ctx == s->ctx))
		ctx = s->ctx;
	s->ctx = ctx;
	s->task = SOCK_NODE_CALL;
	return ctx ? ctx | NODE_BIT : 0;
}

// node_next_wrap: AsyncWrap::MakeCallback(this = wrap) is about to open a
// scope (through InternalMakeCallback and the Environment's constructor).
static __always_inline int node_next_wrap(__u64 wrap)
{
	if (!task_traced(bpf_get_current_pid_tgid()))
		return 0;
	struct node_turn *t = node_turn_make();
	if (t)
		t->next_wrap = wrap;
	return 0;
}

// node_scope_env_begin: InternalCallbackScope(this, env, object, const
// async_context &actx, flags): a resource's callback (a non-zero async id)
// is the wrap whose MakeCallback opened it, if any; a timer's or an
// immediate's scope ({0, 0}) has none.
static __always_inline int node_scope_env_begin(__u64 this, __u64 actx)
{
	struct node_turn *t = node_turn();
	__u64 id = 0;
	if (actx)
		bpf_probe_read_user(&id, sizeof(id), (void *)actx);
	return scope_begin(this, id && t ? t->next_wrap : 0);
}

// node_connect: socket sk was connected; by a Node.js loop's thread during a
// turn, it remembers the turn's request.
static __always_inline void node_connect(__u64 sk)
{
	struct node_turn *t = node_turn();
	if (!t || !t->loop)
		return;
	struct sock_state *s = bpf_map_lookup_elem(&sockets, &sk);
	if (s)
		node_connected(t, s);
}
