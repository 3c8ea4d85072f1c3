// Syscalls in flight: what the entry saw, for the exit. Task-local storage
// of the calling thread (a syscall's entry and exit run on the same task and
// never nest), so neither side pays a hash map update or delete (an LRU hash
// update and delete cost ~1 µs per syscall here); pending tells the exit
// that its entry kept the syscall. connect(2) keeps its fd in the same
// storage, so a thread that connects and then reads and writes allocates it
// once (its creation, on a thread's first kept syscall, is the costly part),
// and so does a TLS library call's state (tls.h): one lookup at a syscall's
// entry serves the TLS check and the syscall.
#pragma once
#include "tlscalls.h"

// A socket's verdict copied into its thread's storage (l7.h l7_remember):
// the socket (its address, its sockfs inode, its addresses and ports) and
// sockets_gen when the verdict was read.
struct l7_copy {
	__u64 sk;       // 0: none
	__u64 ino;
	__u64 tuple;
	__u32 gen;
	__u8 l7;        // L7_YES, L7_NO or L7_OPAQUE (never L7_UNKNOWN: it changes)
	__u8 _pad[3];
};

struct active_io {
	__u64 ts;       // egress: entry time (the event's time); not set for ingress, whose event takes its exit's
	__u64 buf;      // user buffer (first iovec for the vectored calls)
	__u64 buflen;   // its length
	__u64 sk;
	__u32 seq;
	__u32 netns;    // network namespace inode of the socket
	__u8 dir;
	__u8 vectored;  // buf points to a struct iovec
	__u8 msg;       // buf points to a struct user_msghdr
	__u8 mmsg;      // ...the first of a struct mmsghdr array: its length is msg_len
	__u8 l7;        // the socket's L7 verdict at entry (l7.h)
	__u8 l4;        // IPPROTO_TCP / IPPROTO_UDP
	__u8 pending;   // set by the entry, cleared by the exit
	__u8 connecting; // connect(2) in flight on connect_fd
	__s64 connect_fd;
	__u64 serving_ts; // when this thread last wrote its process's serving time (causality.h serving_mark); 0: never
	__u32 serving_none; // serving_gen + 1 when the process was found in no serving entry (handoff.h handoff_call); 0: never
	__u32 go_gen;   // go_gen + 1 when go was looked up (goroutine.h); 0: never
	__u16 go;       // go_procs' value for the thread's process (its goid offset); 0: not listed
	__u8 waited;    // entered an event-loop wait (epoll_wait, poll, select) since its last socket event went out (wait.h)
	__u8 rt;        // RT_*: the thread has a runtime's task storage (py_running, node_turns)
	__u8 tp;        // TLS_PROC_* bits of its process (maps/tlsprocs.h), valid while tp_gen holds
	__u32 tp_gen;   // tls_procs_gen's gen + 1 when tp was looked up; 0: never
	// The verdicts of the two sockets the thread last looked up (l7.h
	// l7_skip), so that a syscall on one of them makes one sockets lookup
	// (at its exit), not two. Two: a proxy's thread moves a request from
	// one socket to another, a loop that calls itself writes one end and
	// reads the other.
	struct l7_copy v[2];
	__u8 vnext;     // the slot the next copy takes
	struct tls_call tls; // the thread's TLS library call (bpf/socket/tls.h)
	struct tls_mapped tls_mapped; // its connections' sockets, known mapped (tls.h tls_map_seen)
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct active_io);
} active SEC(".maps");

// active_io.rt bits. A thread's socket messages look its runtime storage
// up (causality.h) only when its bit is set: a task-storage lookup that
// finds nothing still costs ~20-40 ns, and most threads are no asyncio or
// Node.js event loop. The bit is set before the storage is created
// (rt_mark), so a thread that has the storage always has the bit.
#define RT_PY 1   // py_running (asyncio.h)
#define RT_NODE 2 // node_turns (nodeasync.h)

// rt_mark sets bit in the current thread's syscall storage (created when
// missing); 0 when it could not: the runtime's storage is then not made.
static __always_inline int rt_mark(__u8 bit)
{
	struct active_io *a = bpf_task_storage_get(&active, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a)
		return 0;
	a->rt |= bit;
	return 1;
}
