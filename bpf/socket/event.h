// Event layout shared with collector/ebpf (event.go decodes it).
#pragma once

#define MAX_PAYLOAD 16384
#define COMM_LEN 16

enum direction { DIR_EGRESS = 0, DIR_INGRESS = 1 };

struct event {
	__u64 ts;          // ns, CLOCK_MONOTONIC: egress at syscall entry, ingress at exit
	__u64 sock_id;     // kernel struct sock address: unique while the socket lives
	__u64 syscall_trace_id;
	__u32 pid;         // tgid
	__u32 tid;
	__u32 tcp_seq;     // of the first payload byte: write_seq at egress entry, copied_seq at ingress entry
	__u32 len;         // bytes the syscall moved
	__u32 cap;         // bytes captured in data
	__u32 netns;       // network namespace inode
	__u16 family;      // AF_INET / AF_INET6
	__u16 sport;       // local port, host order
	__u16 dport;       // remote port, host order
	__u8 dir;
	__u8 l4;           // IPPROTO_TCP / IPPROTO_UDP
	__u8 saddr[16];    // local address (IPv4 in the first 4 bytes)
	__u8 daddr[16];    // remote address
	char comm[COMM_LEN];
	__u8 tls;          // TLS_LIB_* (tls.h): plaintext of a TLS library call; 0: a syscall's bytes
	__u8 flags;        // EVENT_*
	__u8 _pad[2];
	__u32 skip;        // bytes the syscall moved before data[0]: its copy began at a body's end (bodies.h)
	__u8 data[MAX_PAYLOAD];
};

// Event flags.
// EVENT_WAITED: the thread entered an event-loop wait (epoll_wait, poll,
// select) since its previous socket event went out (wait.h).
#define EVENT_WAITED 1
// EVENT_PAST_COPY: the syscall moved bytes past its copy on a TCP socket
// read as L7 (a message that may go on: a body whose range user space may
// tell, bodies.h); such a record wakes the reader (maps/events.h).
#define EVENT_PAST_COPY 2

#define EVENT_HDR_SIZE (sizeof(struct event) - MAX_PAYLOAD)

// payload_clamp returns how many of a message's len bytes to capture: at
// most cap, at most MAX_PAYLOAD - 1. Callers re-bound the result with
// `cap &= MAX_PAYLOAD - 1` before using it as a size: the verifier does not
// carry the bound out of the comparison here.
static __always_inline __u32 payload_clamp(__u32 cap, __u64 len)
{
	if (cap > len)
		cap = len;
	if (cap > MAX_PAYLOAD - 1)
		cap = MAX_PAYLOAD - 1;
	return cap;
}
