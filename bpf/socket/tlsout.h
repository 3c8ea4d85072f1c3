// Egress sequence numbers of memory-BIO TLS libraries (node; docs/tls.md).
// Node's SSL_write encrypts into a memory BIO and returns; the thread writes
// the BIO to the socket right after (sometimes behind the session tickets
// the server still holds, in the same write(2)). So tls_emit holds a
// write call that made no syscall (tls_out_hold) instead of sending it, and
// the thread's first write(2) to the same socket within TLS_LAST_IN_NS
// sends it (tls_out_write) with the sequence number of its record in that
// write: the write's records are walked from its start and the call's must
// be the last one, ending the write, an application data record of the
// length its plaintext makes (tls_out_fits), else the number stays 0 (never
// a guess). Any later syscall or TLS call of the thread past the window, or
// the thread's next held call, sends a held event with 0 (tls_out_flush).
#pragma once
#include "maps/tlsout.h"

// TLS_OUT_NS: how soon after SSL_write the thread must write its socket.
#define TLS_OUT_NS 10000000ULL
// tls_out_fits: an application data record of rlen bytes can carry len
// bytes of plaintext: TLS 1.3 (inner content type and a 16-byte AEAD tag:
// +17), TLS 1.2 AES-GCM (8-byte explicit nonce and tag: +24), TLS 1.2
// ChaCha20-Poly1305 (tag: +16). CBC suites (padding) are not read.
static __always_inline int tls_out_fits(__u32 rlen, __u32 len)
{
	return rlen == len + 17 || rlen == len + 24 || rlen == len + 16;
}
// TLS_OUT_RECORDS: records walked in a write (before the data: the session
// tickets, OpenSSL 3 sends two; a client's change cipher spec and Finished).
#define TLS_OUT_RECORDS 6

// tls_out_flush sends the thread's held event with sequence number seq (0:
// unknown) and forgets it.
static __always_inline void tls_out_flush(struct tls_call *call, __u32 tid, __u32 seq)
{
	call->out_pending = 0;
	struct event *e = bpf_map_lookup_elem(&tls_out, &tid);
	if (!e)
		return; // evicted (more threads holding than tls_out's entries)
	e->tcp_seq = seq;
	__u32 cap = e->cap & (MAX_PAYLOAD - 1);
	if (bpf_ringbuf_output(&events, e, EVENT_HDR_SIZE + cap, rb_flags(0)))
		count(STAT_DROP_RINGBUF);
	else
		count(STAT_TLS_EVENTS);
	bpf_map_delete_elem(&tls_out, &tid);
}

// tls_out_expire sends a held event whose window has passed.
static __always_inline void tls_out_expire(struct tls_call *call)
{
	if (call->out_pending && bpf_ktime_get_ns() - call->out_ts > TLS_OUT_NS)
		tls_out_flush(call, (__u32)bpf_get_current_pid_tgid(), 0);
}

// tls_out_holds reports whether tls_out_hold takes an event of len bytes
// of call's: an OpenSSL write of at most one record.
static __always_inline int tls_out_holds(struct tls_call *call, __u64 len)
{
	return call->dir == DIR_EGRESS && call->lib == TLS_LIB_OPENSSL && len <= 16384;
}

// tls_out_hold keeps the event e of an egress call that made no syscall
// (sent later by tls_out_write); 0 when it could not (send it now).
static __always_inline int tls_out_hold(struct tls_call *call, struct event *e, __u64 skp, __u64 len)
{
	if (!tls_out_holds(call, len))
		return 0;
	__u32 tid = e->tid;
	if (call->out_pending)
		tls_out_flush(call, tid, 0); // an earlier call's write never came
	if (bpf_map_update_elem(&tls_out, &tid, e, BPF_ANY))
		return 0;
	call->out_pending = 1;
	call->out_sk = skp;
	call->out_ts = bpf_ktime_get_ns();
	call->out_len = len;
	return 1;
}

// tls_out_seq returns the sequence number of the held call's record in a
// write(2)/send of buflen bytes at buf starting at seq, or 0. Node writes
// its BIO with write(2) when it is one buffer; a vectored write is not read
// (a record of its first buffer need not be the last of the write).
static __always_inline __u32 tls_out_seq(struct tls_call *call, __u32 seq, __u64 buf, __u64 buflen)
{
	__u64 off = 0;
	for (int i = 0; i < TLS_OUT_RECORDS; i++) {
		if (off + 5 > buflen)
			return 0;
		__u8 h[5] = {};
		if (bpf_probe_read_user(h, sizeof(h), (void *)(buf + off)))
			return 0;
		// Before the call's record: the end of a handshake (change
		// cipher spec 20, handshake 22) or session tickets (23).
		if (h[0] < 20 || h[0] > 23 || h[1] != 3 || h[2] > 3)
			return 0; // not TLS records: not the BIO's
		__u32 rlen = (__u32)h[3] << 8 | h[4];
		__u64 end = off + 5 + rlen;
		if (end >= buflen) // the write's last record: the call's
			return end == buflen && h[0] == 23 && tls_out_fits(rlen, call->out_len) ? seq + (__u32)off : 0;
		off = end;
	}
	return 0;
}

// tls_out_write is called by a socket syscall's entry outside a TLS call
// of a thread holding an event: the first write to the held call's socket
// sends it with its record's number; a syscall past the window, with 0.
static __always_inline void tls_out_write(struct tls_call *call, struct sock *sk, __u8 dir, __u64 buf, __u64 buflen,
					  __u8 vectored, __u8 msg)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_ktime_get_ns() - call->out_ts > TLS_OUT_NS) {
		tls_out_flush(call, tid, 0);
		return;
	}
	if (dir != DIR_EGRESS || call->out_sk != (__u64)sk)
		return;
	struct tcp_sock *tp = kcast(sk, struct tcp_sock);
	__u32 seq = vectored || msg ? 0 : tls_out_seq(call, tp->write_seq, buf, buflen);
	tls_out_flush(call, tid, seq);
}
