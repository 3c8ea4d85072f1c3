// TLS plaintext (docs/tls.md): the probes of a TLS library (openssl.h, the
// Go crypto/tls probes) call tls_enter at a read or write call's entry and
// tls_leave + tls_emit at its return. While the call runs, the socket
// syscalls of its thread (socket.bpf.c enter_io) record the socket they
// touched and its TCP sequence number into the call (tls_syscall) and emit
// no event of their own: they carry ciphertext. tls_emit then sends the
// plaintext as the same struct event a syscall sends, for that socket, with
// that sequence number and the library in event.tls: the collector's
// sessions parse it unchanged. A call that made no syscall (records already
// buffered) uses the socket its connection object used last (tls_conns).
#pragma once
#include "maps/tlsconns.h"
#include "maps/tlssocks.h"
#include "maps/tlsexclude.h"
#include "tlsprocs.h"

// Libraries, event.tls (collector/ebpf Event.TLS).
#define TLS_LIB_NONE 0
#define TLS_LIB_OPENSSL 1
#define TLS_LIB_GO 2

#include "tlsout.h"

const volatile __u8 tls_exclude_any = 0; // tls_exclude holds a comm (set by the loader)

#include "ring.h"

// Defined in socket.bpf.c.
static __always_inline __u16 inet_proto(struct sock *sk, __u32 *netns);

// tls_excluded reports whether the task's process name is in
// tls.exclude_processes.
static __always_inline int tls_excluded(struct task_struct *task)
{
	if (!tls_exclude_any)
		return 0;
	struct tls_comm k = {};
	__u64 *c = (__u64 *)task->comm;
	__u64 w[2] = {c[0], c[1]};
	__builtin_memcpy(k.comm, w, sizeof(w));
	return bpf_map_lookup_elem(&tls_exclude, &k) != NULL;
}

// tls_enter starts a call of the current thread on connection object conn:
// buf is the plaintext buffer, lenp where the call stores its byte count
// (0: its return value is the count), dir DIR_EGRESS for a write. It
// returns the call's state, or NULL when the call is not read.
static __always_inline struct tls_call *tls_enter(__u64 conn, __u64 buf, __u64 lenp, __u8 dir, __u8 lib)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->tgid == self_tgid || tls_excluded(task))
		return NULL;
	struct active_io *a = bpf_task_storage_get(&active, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a) {
		count(STAT_DROP_STORAGE);
		return NULL;
	}
	struct tls_call *call = &a->tls;
	tls_out_expire(call);
	call->conn = conn;
	call->buf = buf;
	call->lenp = lenp;
	call->ts = dir == DIR_EGRESS ? bpf_ktime_get_ns() : 0;
	call->sk = 0;
	call->seq = 0;
	call->seq_set = 0;
	call->egress_min = 0;
	call->whole = 0;
	call->dir = dir;
	call->lib = lib;
	call->active = 1;
	return call;
}

// tls_leave ends the current thread's call: the thread's storage (the call
// in its member tls), or NULL when no call was running.
static __always_inline struct active_io *tls_leave(struct task_struct *task)
{
	struct active_io *a = bpf_task_storage_get(&active, task, 0, 0);
	if (!a || !a->tls.active)
		return NULL;
	a->tls.active = 0;
	return a;
}

// tls_syscall is called by a socket syscall's entry (socket.bpf.c
// enter_io) with the thread's storage (NULL: none yet): inside a TLS call
// it records the TCP socket into the call (the first one) and the TCP
// sequence number of the call's record, and returns 1: the syscall moves
// ciphertext and sends no event. Egress: the first
// write's sequence, unless the bytes written before a later write are too
// few to hold the first data record (egress_min): they were a control
// record (a TLS 1.3 KeyUpdate OpenSSL sends at the start of an SSL_write)
// and the later write starts the data. Ingress: OpenSSL reads a record's 5-byte header, then
// its body: the start of the last record read (records read before it in
// the same call, a TLS 1.3 session ticket, gave no plaintext). Outside a
// call, a thread that makes TLS calls remembers the socket it last read
// from and where that read began: a library that reads through a memory
// BIO (node) calls SSL_read right after the read syscall of its connection
// (tls_sock_of).
static __always_inline int tls_syscall(struct active_io *a, struct sock *sk, __u8 dir, __u64 buf, __u64 buflen,
				       __u8 vectored, __u8 msg)
{
	if (!a || !a->tls.lib)
		return 0; // the thread never made a TLS call
	struct tls_call *call = &a->tls;
	__u16 family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	struct tcp_sock *tp = kcast(sk, struct tcp_sock);
	if (!call->active) {
		if (call->out_pending)
			tls_out_write(call, sk, dir, buf, buflen, vectored, msg);
		if (dir == DIR_INGRESS) {
			// The start of the read (a record split across reads
			// started before it: its number then matches nothing).
			call->last_in = (__u64)sk;
			call->last_in_seq = tp->copied_seq;
			call->last_in_used = 0;
			call->last_in_ts = bpf_ktime_get_ns();
		}
		return 0;
	}
	if (call->sk && call->sk != (__u64)sk)
		return 1;
	call->sk = (__u64)sk;
	if (dir != call->dir)
		return 1;
	__u32 seq = dir == DIR_EGRESS ? tp->write_seq : tp->copied_seq;
	if (!call->seq_set || (dir == DIR_INGRESS && seq != call->seq + 5) ||
	    (dir == DIR_EGRESS && seq - call->seq < call->egress_min)) {
		call->seq = seq;
		call->seq_set = 1;
	}
	return 1;
}

// TLS_LAST_IN_NS: how recent the thread's last read must be to stand for a
// memory-BIO library's connection (node reads, then calls SSL_read or
// SSL_write in the same callback).
#define TLS_LAST_IN_NS 10000000ULL

// tls_conns_moved counts a change to tls_conns (after it: tls_map_seen).
static __always_inline void tls_conns_moved(void)
{
	gen_bump(&tls_conns_gen);
}

// tls_map remembers that connection object ck uses socket skp (both ways);
// chain_sk: the socket a Go Conn's fields lead to (gotls.h), else 0. A
// connection already mapped so costs one lookup and no update (most calls;
// the two LRU updates were ~100 ns of a return here).
static __always_inline void tls_map(struct tls_conn_key *ck, __u64 skp, __u64 chain_sk)
{
	__u64 tuple = sock_tuple(kcast(skp, struct sock));
	__u8 chained = chain_sk == skp;
	struct tls_sock *known = bpf_map_lookup_elem(&tls_conns, ck);
	if (known && known->sk == skp && known->tuple == tuple && known->chained == chained)
		return;
	struct tls_sock v = {.sk = skp, .tuple = tuple, .chained = chained};
	bpf_map_update_elem(&tls_conns, ck, &v, BPF_ANY);
	tls_conns_moved();
	tls_proc_mark(ck->tgid, TLS_PROC_SOCKS); // before: gotls.h gotls_missed
	bpf_map_update_elem(&tls_socks, &skp, ck, BPF_ANY);
}

// tls_map_seen is tls_map (chain_sk 0) for the thread whose mappings m
// holds: when the thread found or made the same mapping (object, socket
// and its tuple) and tls_conns has not changed since (tls_conns_gen: an
// update, which may evict, or a deletion moves it), the map holds it
// still and is not looked up. A thread's calls on one connection (a
// request read and its response written, a client's request and its
// response) cost one lookup, not one each.
static __always_inline void tls_map_seen(struct tls_mapped *m, struct tls_conn_key *ck, __u64 skp)
{
	__u32 zero = 0;
	__u32 *genp = bpf_map_lookup_elem(&tls_conns_gen, &zero); // before tls_conns: see tls_conns_gen
	if (!genp) {
		tls_map(ck, skp, 0);
		return;
	}
	__u32 gen = *genp + 1;
	__u64 tuple = sock_tuple(kcast(skp, struct sock));
	__u8 i;
	if (m->conn[0] == ck->conn && m->sk[0] == skp) {
		if (m->tuple[0] == tuple && m->gen[0] == gen)
			return;
		i = 0;
	} else if (m->conn[1] == ck->conn && m->sk[1] == skp) {
		if (m->tuple[1] == tuple && m->gen[1] == gen)
			return;
		i = 1;
	} else {
		i = m->next & 1;
		m->next = i ^ 1;
	}
	tls_map(ck, skp, 0);
	m->conn[i] = ck->conn;
	m->sk[i] = skp;
	m->tuple[i] = tuple;
	m->gen[i] = gen; // read before tls_map: its own update, if any, makes the next call look up once more
}

// tls_sock_closed forgets the connection object of a closed socket.
static __always_inline void tls_sock_closed(__u64 sk)
{
	struct tls_conn_key *ck = bpf_map_lookup_elem(&tls_socks, &sk);
	if (!ck)
		return;
	struct tls_conn_key k = *ck;
	bpf_map_delete_elem(&tls_conns, &k);
	tls_conns_moved();
	bpf_map_delete_elem(&tls_socks, &sk);
}

// tls_sock_of returns the socket of a call that made no syscall: the one
// its connection object used last (still the same socket), else, for a
// memory-BIO library's first calls, the socket the thread read from just
// before (unless another call took that read); 0 when none. *seq is set
// when known: a memory-BIO library's read call that is the first to follow
// the thread's read of its socket (within TLS_LAST_IN_NS) carries the
// start of that read (node reads the ciphertext, then calls SSL_read in the
// same callback until it would block); the calls after it, 0 (records of
// that read: as a socket BIO's buffered records).
static __always_inline __u64 tls_sock_of(struct tls_call *call, struct tls_conn_key *ck, __u32 *seq)
{
	__u64 skp = 0;
	struct tls_sock *known = bpf_map_lookup_elem(&tls_conns, ck);
	if (known) {
		skp = known->sk;
		if (sock_tuple(kcast(skp, struct sock)) != known->tuple) {
			bpf_map_delete_elem(&tls_conns, ck); // another socket took its place
			tls_conns_moved();
			skp = 0;
		}
	}
	__u8 fresh = call->last_in && bpf_ktime_get_ns() - call->last_in_ts <= TLS_LAST_IN_NS;
	if (!skp) {
		if (!fresh || call->last_in_used)
			return 0;
		skp = call->last_in;
		tls_map(ck, skp, 0);
	} else if (!fresh || call->last_in != skp || call->dir != DIR_INGRESS) {
		return skp;
	}
	if (call->dir == DIR_INGRESS && !call->last_in_used)
		*seq = call->last_in_seq;
	call->last_in_used = 1;
	return skp;
}

// tls_emit sends len bytes of plaintext at buf (user memory), moved by the
// ended call, as a struct event of the call's socket; len 0 (the call
// failed or would block) only remembers the socket of its connection. a is
// the current task's storage, or NULL when the caller has not looked it up;
// chain_sk as tls_map's.
static __always_inline int tls_emit(struct task_struct *task, struct active_io *a, struct tls_call *call, __u64 buf,
				    __u64 len, __u64 chain_sk)
{
	__u64 id = (__u64)task->tgid << 32 | (__u32)task->pid;
	struct tls_conn_key ck = {.conn = call->conn, .tgid = id >> 32};
	__u64 skp = call->sk;
	__u32 seq = call->seq_set ? call->seq : 0;
	if (skp && a && !chain_sk)
		tls_map_seen(&a->tls_mapped, &ck, skp); // OpenSSL: the thread's storage
	else if (skp)
		tls_map(&ck, skp, chain_sk);
	else if (!(skp = tls_sock_of(call, &ck, &seq))) {
		if (len > 0)
			count(STAT_TLS_NO_SOCKET);
		return 0;
	}
	if (len == 0)
		return 0;
	struct sock *sk = kcast(skp, struct sock);
	__u32 netns = 0;
	if (inet_proto(sk, &netns) != IPPROTO_TCP)
		return 0;
	if (!a)
		a = bpf_task_storage_get(&active, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a) {
		count(STAT_DROP_STORAGE);
		return 0;
	}
	__u8 dir = call->dir;
	// A write's event takes its entry's time, and causality the same time
	// (as exit_io's: the write reads the clock once, at its entry; handoff
	// ages are signed for it); a read's, the clock now. A call with no
	// entry time (0) leaves causality to read the clock where it needs it.
	__u64 now = dir == DIR_EGRESS ? call->ts : bpf_ktime_get_ns();
	__u8 flags = wait_flags(a);
	__u8 cont = 0, made = 0, gor = 0;
	__u64 trace_id = causality(id, skp, dir, now, &cont, a, &made, &gor);
	if (made)
		l7_forget(a, skp); // as exit_io's (socket.bpf.c)
	if (gor && trace_id)
		trace_id |= GOROUTINE_BIT;
	__u32 cap = payload_clamp(payload_cap, len);
	cap &= MAX_PAYLOAD - 1; // re-bound here: the verifier loses the helper's bound
	// A write that made no syscall may be held (tlsout.h: a copy in
	// tls_out): built in the scratch event, as one over RING_DIRECT_MAX.
	// The others are built in their ring record.
	if (cap <= RING_DIRECT_MAX && !(!call->sk && !seq && tls_out_holds(call, len))) {
		if (ring_emit(task, skp, sk, id, now, trace_id, seq, len, cap, dir, IPPROTO_TCP, netns, call->lib, flags,
			      buf, 0)) {
			count(STAT_DROP_RINGBUF);
			return 0;
		}
		wait_sent(a, flags);
		count(STAT_TLS_EVENTS);
		return 0;
	}
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	fill_event(e, task, skp, sk, id, now, trace_id, seq, len, cap, dir, IPPROTO_TCP, netns, call->lib, flags);
	if (cap > 0)
		bpf_probe_read_user(e->data, cap, (void *)buf);
	if (!call->sk && !seq && tls_out_hold(call, e, skp, len)) {
		e->tls = TLS_LIB_NONE;
		wait_sent(a, flags);
		return 0; // sent when the thread writes the ciphertext (tlsout.h)
	}
	int err = bpf_ringbuf_output(&events, e, EVENT_HDR_SIZE + cap, rb_flags(0));
	e->tls = TLS_LIB_NONE; // the scratch event is shared with the syscall path
	if (err) {
		count(STAT_DROP_RINGBUF);
		return 0;
	}
	wait_sent(a, flags);
	count(STAT_TLS_EVENTS);
	return 0;
}
