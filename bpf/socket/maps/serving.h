// Processes serving requests (tgid → when their last server request began):
// only their threads' calls can belong to a request they do not hold, so
// only those calls become unbound calls (bpf/socket/handoff.h).
#pragma once
#include "gen.h"
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} serving SEC(".maps");

// Bumped each time serving gains an entry (causality.h serving_mark): a
// thread's note that its process had none (maps/active.h serving_none,
// handoff.h handoff_call) holds only while this has not moved.
GENERATION_MAP(serving_gen);

// serving_gen_want returns what a thread's serving_none holds while the
// note it made is still true: serving_gen's value + 1 (0: never noted).
static __always_inline __u32 serving_gen_want(void)
{
	return gen_of(&serving_gen) + 1;
}
