// Per-CPU counters read into /metrics.
#pragma once
enum zt_stat {
	STAT_EVENTS = 0,    // messages sent to user space
	STAT_DROP_RINGBUF,  // ring buffer full
	STAT_DROP_FILTER,   // dropped in kernel as not L7 (empty)
	STAT_DROP_SCOPE,    // outside the configured network namespaces
	STAT_HANDOFFS,      // contexts handed to an idle worker thread
	STAT_CONFIRMED,     // handoffs a worker's verdict confirmed
	STAT_REFUTED,       // handoffs a worker's verdict refuted
	STAT_NONL7,         // sockets marked not L7 (l7.h)
	STAT_DROP_STORAGE,  // syscalls not kept: the thread's storage could not be had (maps/active.h)
	STAT_CLAIMS,        // a worker's call claimed by the request it handed a result to
	STAT_ITEMS,         // work items a worker took from a queue, put there by a thread holding a request (pyqueue.h)
	STAT_BODY_ONLY,     // syscalls sent without payload: inside a body user space counts by length (bodies.h)
	STAT_TLS_EVENTS,    // plaintext messages of TLS library calls sent (tls.h)
	STAT_TLS_NO_SOCKET, // TLS calls that moved bytes on no socket known (tls.h)
	STAT_BODY_TAIL,     // syscalls crossing a body's end whose payload was read from that end (bodies.h)
	STAT_RING_WAKES,    // records that woke the ring's reader (events.h rb_flags)
	STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		__sync_fetch_and_add(v, 1);
}
