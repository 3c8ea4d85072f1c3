// Context ids shared by the causality headers (causality.h, handoff.h,
// pyqueue.h, asyncio.h, nodeasync.h), defined once here so that none of
// them relies on another's definitions: how a fresh id is made, the flag
// bits a context carries, and the context a thread holds.
//
// A context id: the CPU that made it in bits 56-61, a per-CPU count below;
// bit 63 marks a call's token (HANDOFF_BIT), bit 62 a context a Node.js
// turn gave (NODE_BIT). User space (collector/ebpf) strips the flag bits.
#pragma once
#include "maps/threads.h"
#include "maps/ids.h"

#define HANDOFF_BIT (1ULL << 63) // a call's token (handoff.h, asyncio.h), not a request's context
#define NODE_BIT (1ULL << 62) // the context was given by a Node.js turn (not a goroutine: Go processes have their own)

// IDLE_NS: a thread that received no server request for this long holds
// none (idle reclaim).
#define IDLE_NS (10ULL * 1000000000ULL)

// fresh_id returns a new context id (0 if the counter is missing).
static __always_inline __u64 fresh_id(void)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&id_counter, &zero);
	if (!c)
		return 0;
	if (*c == 0) // CPU in bits 56-61; bits 62-63 stay free for flags
		*c = ((__u64)(bpf_get_smp_processor_id() & 0x3f) << 56) | (bpf_ktime_get_ns() & ((1ULL << 56) - 1));
	*c += 1;
	return *c;
}

// held returns the context id the thread whose entry is ts holds
// unambiguously, or 0.
static __always_inline __u64 held(struct thread_state *ts, __u64 now)
{
	if (!ts || ts->req.open != 1 || ts->req.ambiguous || now - ts->req.ts > IDLE_NS)
		return 0;
	return ts->req.id;
}
