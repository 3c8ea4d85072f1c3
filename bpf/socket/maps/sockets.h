// Per-socket causality state (bpf/socket/causality.h), keyed by the kernel
// struct sock address; deleted at close (sockets_gen counts the deletions and
// the verdicts taken back).
#pragma once
#include "gen.h"
#define ROLE_UNKNOWN 0
#define ROLE_CLIENT 1 // connect(2)ed, or its first message was egress
#define ROLE_SERVER 2 // accept(2)ed, or its first message was ingress

#define L7_UNKNOWN 0 // no verdict yet: every message goes to user space
#define L7_YES 1     // a message looked like an L7 protocol's: for good
#define L7_NO 2      // its first messages looked like none: skipped (l7.h)
#define L7_OPAQUE 3  // TLS whose plaintext is not read: metadata only (opaque.h)

struct sock_state {
	__u64 ctx;     // server sockets: context id of the request being served;
	               // client sockets: the token of the call sent on it
	__u64 handed;  // client sockets: the context handed over with that call
	__u64 thread;  // pid_tgid of the thread that received that request
	__u64 tuple;   // addresses and ports when the verdict was taken (l7.h)
	__u8 role;
	__u8 open;     // server sockets: request received, response not yet begun
	__u8 l7;       // L7_*
	__u8 probes;   // messages that looked like no L7 protocol so far
	__u8 replied;  // client sockets: a response came since the last request
	__u8 last_dir; // direction of the last syscall that moved bytes, + 1 (0: none yet; bodies.h)
	__u8 task;     // client sockets: how its call's context was given, when
	               // by an event loop (asyncio.h SOCK_TASK_CALL, nodeasync.h
	               // SOCK_NODE_*; 0: otherwise)
	__u8 _pad[1];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_state);
} sockets SEC(".maps");

// Bumped by every deletion from sockets (causality.h sock_closed) and every
// L7_OPAQUE verdict turned L7_NO by another thread (opaque.h opaque_read): a
// thread's copy of a socket's verdict (maps/active.h, l7.h l7_skip) holds
// only while this has not moved.
GENERATION_MAP(sockets_gen);

// sockets_moved makes every thread's copy of a verdict stale (a deletion
// from sockets, a verdict taken back): their next syscalls look it up.
static __always_inline void sockets_moved(void)
{
	gen_bump(&sockets_gen);
}
