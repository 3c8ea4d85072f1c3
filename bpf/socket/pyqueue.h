// Work queues (docs/assembly.md "Work queues"): CPython's thread pool
// (concurrent.futures.ThreadPoolExecutor) passes each task to its workers
// as an object through a queue.SimpleQueue, implemented in C in the _queue
// extension module. Uprobes on its put and get (found by the collector in
// the module's method table, collector/cpython) see the object itself: an
// item put by a thread holding one request and taken by a worker hands the
// worker that request's context, exactly, for every call it makes until it
// takes its next item. Nothing is inferred from timing or wakes.
#pragma once
#include "ids.h"
#include "maps/pyitems.h"

// How put's item is found (the uprobe's cookie, from the method's calling
// convention): METH_FASTCALL passes an array of arguments (in SI, or in DX
// with METH_METHOD), METH_O the argument itself in SI.
#define PY_ITEM_ARGS_SI 0
#define PY_ITEM_ARGS_DX 1
#define PY_ITEM_SI 2

// request_of returns the context of the one request thread works for: the
// one it holds, or the one its current work item was put for.
static __always_inline __u64 request_of(__u64 thread, __u64 now)
{
	struct thread_state *ts = thread_of(thread);
	__u64 id = held(ts, now);
	if (id)
		return id;
	struct handoff *h = hand_of(ts);
	if (h && h->item && h->state != HANDOFF_NONE)
		return h->ctx;
	return 0;
}

// work_item reports whether the Python object at item is an instance of a
// class named _WorkItem (concurrent.futures.thread's): its ob_type (after
// ob_refcnt), the type's tp_name (after its own ob_refcnt, ob_type and
// ob_size). Only the thread pool's work items hand a context: its worker
// runs each item it takes, alone, before it takes the next, where another
// consumer of a SimpleQueue may gather several requests' items for one
// call (a batching log shipper).
static __always_inline int work_item(__u64 item)
{
	__u64 type = 0, name = 0;
	char s[10] = {};
	if (bpf_probe_read_user(&type, sizeof(type), (void *)(item + 8)) || !type ||
	    bpf_probe_read_user(&name, sizeof(name), (void *)(type + 24)) || !name ||
	    bpf_probe_read_user(s, sizeof(s), (void *)name))
		return 0;
	return s[0] == '_' && s[1] == 'W' && s[2] == 'o' && s[3] == 'r' && s[4] == 'k' && s[5] == 'I' &&
	       s[6] == 't' && s[7] == 'e' && s[8] == 'm' && s[9] == 0;
}

// py_put: SimpleQueue.put(item) (or put_nowait): a work item remembers the
// request of the thread that put it (an item put for none, or any other
// object, forgets an earlier item's request at the same address).
static __always_inline int py_put(struct pt_regs *ctx)
{
	__u64 thread = bpf_get_current_pid_tgid();
	if (!task_traced(thread))
		return 0;
	// Both registers read first: the verifier refuses a context load at a
	// computed offset.
	__u64 si = ctx->si, dx = ctx->dx;
	__u64 how = bpf_get_attach_cookie(ctx), item = si;
	if (how != PY_ITEM_SI) {
		__u64 args = how == PY_ITEM_ARGS_DX ? dx : si;
		if (!args || bpf_probe_read_user(&item, sizeof(item), (void *)args))
			return 0;
	}
	if (!item)
		return 0;
	struct py_item k = {.item = item, .tgid = thread >> 32};
	__u64 req = request_of(thread, bpf_ktime_get_ns());
	if (req && work_item(item))
		bpf_map_update_elem(&py_items, &k, &req, BPF_ANY);
	else
		bpf_map_delete_elem(&py_items, &k);
	return 0;
}

// py_get: a worker asks for its next item (SimpleQueue.get or get_nowait):
// its last item is done, and so is the context it came with.
static __always_inline int py_get(void)
{
	__u64 thread = bpf_get_current_pid_tgid();
	struct handoff *h = hand_of(thread_of(thread));
	if (h && h->item) {
		h->state = HANDOFF_NONE;
		h->item = 0;
	}
	return 0;
}

// py_got: get returned item (0 on an exception): a worker that serves no
// request of its own takes the request the item was put for, or, for an
// item put for none, drops whatever a wake handed it (the wake was for
// another item).
static __always_inline int py_got(struct pt_regs *ctx)
{
	__u64 item = ctx->ax, thread = bpf_get_current_pid_tgid();
	if (!item || !task_traced(thread))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct thread_state *ts = thread_of(thread);
	if (held(ts, now))
		return 0;
	struct py_item k = {.item = item, .tgid = thread >> 32};
	__u64 *req = bpf_map_lookup_elem(&py_items, &k);
	__u64 id = req ? *req : 0;
	if (req)
		bpf_map_delete_elem(&py_items, &k);
	if (!id) {
		struct handoff *h = hand_of(ts);
		if (h && h->state == HANDOFF_ARMED)
			h->state = HANDOFF_NONE;
		return 0;
	}
	struct handoff n = {.ctx = id, .ts = now, .state = HANDOFF_ARMED, .item = 1};
	hand_set(thread, ts, &n);
	count(STAT_ITEMS);
	return 0;
}
