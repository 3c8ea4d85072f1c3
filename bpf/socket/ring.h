// Events built in place: a struct event's header (fill_event), and the
// whole event built in its ring record (ring_emit), with no copy through
// the per-CPU scratch event (docs/capture.md "Issue 29, tenth round"). The
// syscall exit (socket.bpf.c exit_io) and a TLS call's return (tls.h
// tls_emit) share them.
#pragma once

static __always_inline void fill_addrs(struct event *e, struct sock *sk)
{
	e->family = sk->__sk_common.skc_family;
	e->sport = sk->__sk_common.skc_num;
	e->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (e->family == AF_INET) {
		__u32 s = sk->__sk_common.skc_rcv_saddr;
		__u32 d = sk->__sk_common.skc_daddr;
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else {
		__u32 w[8];
		for (int i = 0; i < 4; i++) {
			w[i] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[i];
			w[4 + i] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[i];
		}
		__builtin_memcpy(e->saddr, &w[0], 16);
		__builtin_memcpy(e->daddr, &w[4], 16);
	}
}

// fill_comm copies the current task's comm with two loads instead of the
// bpf_get_current_comm helper.
static __always_inline void fill_comm(struct event *e, struct task_struct *task)
{
	__u64 *c = (__u64 *)task->comm;
	__u64 w[2] = {c[0], c[1]};
	__builtin_memcpy(e->comm, w, sizeof(w));
}

// fill_event writes the header of an event of socket sk (sock_id: its
// address) for the current task (id: its pid_tgid), every byte of it: e may
// be a ring record, whose memory holds an earlier lap's bytes. tls: TLS_LIB_*
// (tls.h), 0 for a syscall's bytes.
static __always_inline void fill_event(struct event *e, struct task_struct *task, __u64 sock_id, struct sock *sk,
				       __u64 id, __u64 ts, __u64 trace_id, __u32 seq, __u32 len, __u32 cap, __u8 dir,
				       __u8 l4, __u32 netns, __u8 tls, __u8 flags)
{
	__builtin_memset(e, 0, EVENT_HDR_SIZE);
	e->ts = ts;
	e->sock_id = sock_id;
	e->syscall_trace_id = trace_id;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->tcp_seq = seq;
	e->len = len;
	e->cap = cap;
	e->dir = dir;
	e->l4 = l4;
	e->netns = netns;
	e->tls = tls;
	e->flags = flags;
	fill_addrs(e, sk);
	fill_comm(e, task);
}

// RING_DIRECT_MAX: an event with at most this many payload bytes can be
// built in its ring record (ring_emit): a record of the header and the
// payload rounded up to its size class (64-byte steps to 256, 128-byte
// steps to 1024: one reservation per class, as the verifier wants a
// constant size). Larger ones go through the scratch event and
// bpf_ringbuf_output at their exact size. The reader cuts a record to its
// header and cap bytes (collector/ebpf records.go eventRecord).
#define RING_DIRECT_MAX 1024

// RING_CLASS(n): reserve the record of size class n (for cap <= n) into r,
// and bound c (cap) by n in the register the copy uses (the verifier wants
// the bound there; the empty asm keeps clang from dropping the comparison).
#define RING_CLASS(n)                                                                  \
	else if (cap <= (n)) {                                                         \
		r = bpf_ringbuf_reserve(&events, EVENT_HDR_SIZE + (n), 0);             \
		c = cap;                                                               \
		asm volatile("" : "+r"(c));                                            \
		if (c > (n))                                                           \
			c = (n);                                                       \
	}

// ring_emit sends the event fill_event describes, with cap (at most
// RING_DIRECT_MAX) bytes of payload read from the application at ptr (the
// syscall's bytes from skip on: event.skip),
// built in its ring record: reserved at cap's size class, the header
// written in place, the payload read straight into it, submitted. It
// returns 0, or -1 when the ring had no room (a drop; counted by the
// caller).
static __always_inline int ring_emit(struct task_struct *task, __u64 sock_id, struct sock *sk, __u64 id, __u64 ts,
				     __u64 trace_id, __u32 seq, __u32 len, __u32 cap, __u8 dir, __u8 l4, __u32 netns,
				     __u8 tls, __u8 flags, __u64 ptr, __u32 skip)
{
	struct event *r = NULL;
	__u64 c = 0;
	if (cap == 0)
		r = bpf_ringbuf_reserve(&events, EVENT_HDR_SIZE, 0);
	RING_CLASS(64) RING_CLASS(128) RING_CLASS(192) RING_CLASS(256)
	RING_CLASS(384) RING_CLASS(512) RING_CLASS(640) RING_CLASS(768)
	RING_CLASS(896) RING_CLASS(1024)
	if (!r)
		return -1;
	fill_event(r, task, sock_id, sk, id, ts, trace_id, seq, len, c, dir, l4, netns, tls, flags);
	r->skip = skip;
	if (c > 0)
		bpf_probe_read_user(r->data, c, (void *)ptr);
	bpf_ringbuf_submit(r, rb_flags(flags));
	return 0;
}
