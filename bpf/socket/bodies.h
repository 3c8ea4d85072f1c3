// Continuations without their bytes (docs/capture.md "Bodies"): once user
// space has parsed a message's head and knows its length (HTTP/1
// Content-Length and the other length-framed protocols the session parses),
// it writes the stream range of the rest into the bodies map. A syscall of
// that socket and direction lying wholly inside the range reaches user space
// with its length, times and sequence number but no payload: the session
// counts those bytes by length and never parses them. A syscall crossing the
// range's end (the next message begins in it) carries its payload from that
// end (event.skip: the body's bytes before it), so that the next message's
// header is read even when the body's tail is longer than the payload cap.
// Only a syscall in the same direction as the socket's previous one that
// moved bytes (a continuation candidate: sock_state.last_dir) looks the map
// up, so request/response traffic pays nothing.
#pragma once
#include "maps/bodies.h"

// body_skip returns how many of the syscall's len bytes, from sequence
// number seq on socket sk in direction dir, lie in a known body from its
// start: len for a syscall wholly inside one (its payload is not needed),
// the bytes up to the body's end for one that starts inside and crosses
// it (its payload is read from there: the next message's header), 0
// otherwise. A range passed is forgotten.
static __always_inline __u64 body_skip(__u64 sk, __u8 dir, __u32 seq, __u64 len)
{
	struct body_key k = {.sk = sk, .dir = dir};
	struct body_range *r = bpf_map_lookup_elem(&bodies, &k);
	if (!r)
		return 0;
	__u32 end = seq + (__u32)len;
	if ((__s32)(seq - r->start) < 0)
		return 0; // before the body
	if ((__s32)(r->end - end) >= 0) {
		if (r->end == end)
			bpf_map_delete_elem(&bodies, &k);
		return len;
	}
	__u32 in = r->end - seq;   // the body's bytes in this syscall
	bpf_map_delete_elem(&bodies, &k); // passed
	return (__s32)in > 0 ? in : 0;
}

// bodies_closed forgets a closed socket's ranges.
static __always_inline void bodies_closed(__u64 sk)
{
	struct body_key k = {.sk = sk, .dir = DIR_EGRESS};
	bpf_map_delete_elem(&bodies, &k);
	k.dir = DIR_INGRESS;
	bpf_map_delete_elem(&bodies, &k);
}
