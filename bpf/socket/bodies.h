// Continuations without their bytes (docs/capture.md "Bodies"): once user
// space has parsed a message's head and knows its length (HTTP/1
// Content-Length and the other length-framed protocols the session parses),
// it writes the stream range of the rest into the bodies map. A syscall of
// that socket and direction lying wholly inside the range reaches user space
// with its length, times and sequence number but no payload: the session
// counts those bytes by length and never parses them. A syscall crossing the
// range's end (the next message begins in it) carries its payload as always.
// Only a syscall in the same direction as the socket's previous one that
// moved bytes (a continuation candidate: sock_state.last_dir) looks the map
// up, so request/response traffic pays nothing.
#pragma once
#include "maps/bodies.h"

// body_only reports whether the syscall moving len bytes from sequence
// number seq on socket sk in direction dir lies inside a known body (its
// payload is not needed); a range passed is forgotten.
static __always_inline int body_only(__u64 sk, __u8 dir, __u32 seq, __u64 len)
{
	struct body_key k = {.sk = sk, .dir = dir};
	struct body_range *r = bpf_map_lookup_elem(&bodies, &k);
	if (!r)
		return 0;
	__u32 end = seq + (__u32)len;
	if ((__s32)(seq - r->start) >= 0 && (__s32)(r->end - end) >= 0) {
		if (r->end == end)
			bpf_map_delete_elem(&bodies, &k);
		return 1;
	}
	if ((__s32)(end - r->end) > 0)
		bpf_map_delete_elem(&bodies, &k); // passed
	return 0;
}

// bodies_closed forgets a closed socket's ranges.
static __always_inline void bodies_closed(__u64 sk)
{
	struct body_key k = {.sk = sk, .dir = DIR_EGRESS};
	bpf_map_delete_elem(&bodies, &k);
	k.dir = DIR_INGRESS;
	bpf_map_delete_elem(&bodies, &k);
}
