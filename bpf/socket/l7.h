// Per-socket L7 verdict (maps/sockets.h): the first messages of a connection
// tell whether it may carry a protocol user space parses (pkg/l7). Sockets
// whose first messages look like none are marked L7_NO and cost one map
// lookup per syscall from then on (none while a thread goes on with the
// same socket: l7_skip); nothing of them reaches user space but their close.
//
// The rules are deliberately generous, a superset of pkg/l7's Detect
// functions (a false "not L7" loses spans, a false "L7" only costs what every
// socket cost before): one message that looks like any protocol's makes the
// verdict L7 for good; NONL7_PROBES messages of at least L7_MIN_BYTES
// captured bytes that look like none (or one TLS record) make it L7_NO.
// Shorter messages (a length prefix read apart) decide nothing.
#pragma once
#include "maps/sockets.h"
#include "opaque.h"

#define NONL7_PROBES 4
#define L7_MIN_BYTES 16

static __always_inline int is_upper(__u8 c) { return c >= 'A' && c <= 'Z'; }
static __always_inline int is_alpha(__u8 c) { return is_upper(c) || (c >= 'a' && c <= 'z'); }

// looks_l7 reports whether a message whose first bytes are b (at least
// L7_MIN_BYTES of them captured, len in all) may start or continue a message
// of a protocol user space parses.
static __always_inline int looks_l7(const __u8 *b, __u32 len, __u8 l4)
{
	if (l4 == IPPROTO_UDP) // DNS: one question (pkg/l7 requires QDCOUNT 1)
		return b[4] == 0 && b[5] == 1;
	// HTTP/1 methods and "HTTP/", the HTTP/2 preface; PostgreSQL types.
	if (is_upper(b[0]) && is_upper(b[1]) && is_upper(b[2]))
		return 1;
	// RESP2/RESP3 type bytes followed by text.
	switch (b[0]) {
	case '*': case '$': case '+': case '-': case ':': case '_': case ',':
	case '#': case '%': case '~': case '>': case '=': case '(': case '!': case '|':
		if ((b[1] >= 0x20 && b[1] <= 0x7e) || b[1] == '\r')
			return 1;
	}
	// HTTP/2 frame header: length < 1 MiB, a known type, reserved bit clear.
	if (b[0] < 0x10 && b[3] <= 9 && !(b[5] & 0x80))
		return 1;
	// MySQL packet: 3-byte length, sequence 0..2; the packet ends within
	// the syscall or is a large one's start.
	__u32 plen = b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16;
	if (b[3] <= 2 && plen > 0 && (plen + 4 <= len || (len >= 512 && (b[2] < 0x10 || b[4] <= 0x1f))))
		return 1;
	// PostgreSQL typed message: type letter or digit, 4-byte length.
	__u32 be1 = (__u32)b[1] << 24 | (__u32)b[2] << 16 | (__u32)b[3] << 8 | b[4];
	if ((is_alpha(b[0]) || (b[0] >= '1' && b[0] <= '3')) && b[1] <= 1 && be1 >= 4)
		return 1;
	// Length-prefixed: PostgreSQL startup/SSL/GSS/cancel, Kafka request,
	// or any message whose 4-byte size ends within the syscall.
	__u32 l0 = (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
	__u32 code = (__u32)b[4] << 24 | (__u32)b[5] << 16 | (__u32)b[6] << 8 | b[7];
	if (l0 >= 8 && l0 <= 10000 && (code == 0x00030000 || (code >= 80877102 && code <= 80877104)))
		return 1;
	if (l0 >= 10 && l0 <= (100 << 20) && b[4] == 0 && b[5] <= 80 && b[6] == 0 && b[7] <= 20)
		return 1;
	if (l0 >= 1 && len >= 4 && l0 <= len - 4)
		return 1;
	// A Kafka request read apart from its size: api key, version.
	if (b[0] == 0 && b[1] <= 80 && b[2] == 0 && b[3] <= 20)
		return 1;
	return 0;
}

// looks_tls: a TLS record header (handshake, alert, change cipher spec,
// application data; version 3.x), which no parser of ours reads.
static __always_inline int looks_tls(const __u8 *b)
{
	return b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3 && b[2] <= 4;
}

// sock_tuple is the socket's addresses and ports (struct sock_common's
// addrpair and portpair), so a verdict is not taken over by another socket
// at the same address. sk is a BTF pointer (socket.bpf.c fd_to_sock).
static __always_inline __u64 sock_tuple(struct sock *sk)
{
	__u64 addrs = sk->__sk_common.skc_addrpair;
	__u64 ports = sk->__sk_common.skc_portpair;
	return addrs ^ (ports * 0x9e3779b97f4a7c15ULL);
}

// l7_copy_of returns the copy of sk's verdict in the thread's storage a,
// or NULL.
static __always_inline struct l7_copy *l7_copy_of(struct active_io *a, struct sock *sk)
{
	if (a->v[0].sk == (__u64)sk)
		return &a->v[0];
	if (a->v[1].sk == (__u64)sk)
		return &a->v[1];
	return NULL;
}

// l7_forget drops the copy of sk's verdict from the thread's storage a
// (NULL: none): the next syscall on sk looks its state up.
static __always_inline void l7_forget(struct active_io *a, __u64 sk)
{
	if (!a)
		return;
	struct l7_copy *c = l7_copy_of(a, (struct sock *)sk);
	if (c)
		c->sk = 0;
}

// l7_remember copies verdict v of socket sk (sockfs inode ino, addresses
// and ports tuple), read when sockets_gen was gen, into the thread's
// storage a: its next syscalls on the same socket read it there (l7_skip).
// L7_YES is for good; L7_NO and L7_OPAQUE hold while the socket's tuple
// does (l7_skip); every deletion from sockets moves sockets_gen, and
// another socket at sk's address has another inode. L7_UNKNOWN is never
// copied: another thread's exit may decide it at any time.
static __always_inline void l7_remember(struct active_io *a, struct sock *sk, __u64 ino, __u64 tuple, __u32 gen, __u8 v)
{
	if (!a)
		return;
	if (v == L7_UNKNOWN) {
		l7_forget(a, (__u64)sk);
		return; // another socket's copy stays (a thread's Unix socket syscalls between)
	}
	struct l7_copy *c = l7_copy_of(a, sk);
	if (!c) {
		c = a->vnext ? &a->v[1] : &a->v[0];
		a->vnext = !a->vnext;
	}
	c->sk = (__u64)sk;
	c->ino = ino;
	c->tuple = tuple;
	c->gen = gen;
	c->l7 = v;
}

// l7_skip reports whether sk (sockfs inode ino) is marked not L7 (and still
// the same socket); *verdict: its verdict. The thread's storage a (NULL:
// none yet) holds the verdicts of the two sockets it last looked up
// (maps/active.h v): a thread that goes on with those makes no lookup here,
// and the syscall's exit makes the only one (causality.h).
static __always_inline int l7_skip(struct active_io *a, struct sock *sk, __u64 ino, __u8 *verdict)
{
	__u64 tuple = sock_tuple(sk);
	__u32 gen = gen_of(&sockets_gen);
	struct l7_copy *c = a ? l7_copy_of(a, sk) : NULL;
	if (c && c->ino == ino && c->gen == gen && c->tuple == tuple) {
		*verdict = c->l7;
		return c->l7 == L7_NO;
	}
	__u64 key = (__u64)sk;
	struct sock_state *s = bpf_map_lookup_elem(&sockets, &key);
	if (!s) {
		*verdict = L7_UNKNOWN;
		l7_remember(a, sk, ino, tuple, gen, L7_UNKNOWN);
		return 0;
	}
	__u8 v = s->l7;
	*verdict = v;
	if (v != L7_NO && v != L7_OPAQUE) {
		l7_remember(a, sk, ino, tuple, gen, v);
		return 0;
	}
	if (s->tuple == tuple) {
		l7_remember(a, sk, ino, tuple, gen, v);
		return v == L7_NO;
	}
	s->l7 = L7_UNKNOWN; // another socket at the address of a closed one
	s->probes = 0;
	*verdict = L7_UNKNOWN;
	l7_remember(a, sk, ino, tuple, gen, L7_UNKNOWN);
	return 0;
}

// l7_verdict updates the socket's verdict with one message's first cap
// bytes (len in all), moved by the thread of syscall storage a.
static __always_inline void l7_verdict(struct active_io *a, struct sock *sk, const __u8 *b, __u32 cap, __u32 len, __u8 l4)
{
	if (cap < (l4 == IPPROTO_UDP ? 12 : L7_MIN_BYTES))
		return;
	__u64 key = (__u64)sk;
	struct sock_state *s = bpf_map_lookup_elem(&sockets, &key);
	if (!s || s->l7 != L7_UNKNOWN)
		return;
	// A TLS record first: a 517-byte ClientHello also passes for a MySQL
	// packet (its plaintext is read from the TLS library: tls.h).
	if (looks_l7(b, len, l4) && !(l4 == IPPROTO_TCP && looks_tls(b))) {
		s->l7 = L7_YES;
		return;
	}
	s->probes++;
	if (l4 == IPPROTO_TCP && looks_tls(b)) {
		s->tuple = sock_tuple(sk);
		s->l7 = opaque_verdict(a); // L7_OPAQUE: its flights still go out
		count(STAT_NONL7);
	} else if (s->probes >= NONL7_PROBES) {
		s->tuple = sock_tuple(sk);
		s->l7 = L7_NO;
		count(STAT_NONL7);
	}
}
