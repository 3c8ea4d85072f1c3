// What each context key (a thread's pid_tgid, or a goroutine_key) holds:
// the server requests it serves (bpf/socket/causality.h) and the work handed
// to it (bpf/socket/handoff.h), in one entry so that a message's causality
// takes one lookup for both.
#pragma once
#include "handoffs.h"

// Request context of a thread (bpf/socket/causality.h): the id of the
// server request the thread is serving, how many server requests it holds
// open, and whether it held more than one at once since it last held none.
struct thread_ctx {
	__u64 id;        // context id of the latest open server request
	__u64 ts;        // last server request received (idle reclaim); 0: it never received one
	__u32 open;      // server requests received, response not yet begun
	__u8 ambiguous;  // open was > 1 since it was last 0: the thread multiplexes
	__u8 _pad[3];
};

struct thread_state {
	struct thread_ctx req; // requests it serves
	struct handoff hand;   // a request's context handed to it (pool workers)
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);              // context key
	__type(value, struct thread_state);
} threads SEC(".maps");

// thread_of returns the state of context key k, or NULL.
static __always_inline struct thread_state *thread_of(__u64 k)
{
	return bpf_map_lookup_elem(&threads, &k);
}

// hand_of returns the handoff state of k's entry ts, or NULL.
static __always_inline struct handoff *hand_of(struct thread_state *ts)
{
	return ts ? &ts->hand : NULL;
}

// hand_set sets the handoff state of context key k, whose entry is ts (NULL:
// it has none yet; its requests' state is kept).
static __always_inline void hand_set(__u64 k, struct thread_state *ts, const struct handoff *n)
{
	if (ts) {
		ts->hand = *n;
		return;
	}
	// Created by another CPU since the lookup (a waker and the thread
	// itself): keep its requests, set the handoff.
	struct thread_state m = {.hand = *n};
	if (!bpf_map_update_elem(&threads, &k, &m, BPF_NOEXIST))
		return;
	if ((ts = thread_of(k)))
		ts->hand = *n;
}
