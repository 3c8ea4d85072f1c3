// TLS connections whose plaintext is not read (docs/mesh.md "Without
// plaintext"): a process excluded from TLS reading (tls.exclude_processes)
// or whose TLS library has no probes (Envoy's stripped BoringSSL, rustls).
// l7.h marks a socket whose first message is a TLS record L7_OPAQUE instead
// of L7_NO when the thread that moved it never made a TLS call the probes
// read (its syscall storage's TLS call state names no library: tls_enter
// sets it, and refuses excluded processes). The syscalls of such a socket go on to user space as
// metadata (connection, direction, byte count, TCP sequence, thread,
// timestamps) with at most OPAQUE_CAP bytes: the record header
// its first bytes hold. User space makes L4 spans of their flights
// (collector/l4flight). A thread that makes TLS calls the probes read marks
// such a socket L7_NO at its next syscall (a connection whose handshake came
// before the thread's first TLS call): plaintext-read connections keep the
// cost they had, one map lookup per syscall outside a TLS call. Their
// syscalls take no part in request contexts (causality.h, context id 0): a
// TLS 1.3 server writes its session tickets after reading the client's
// Finished, often with the request, and that write would end the request
// on its thread, whose next request would then lend its id to the calls of
// the first (seen in the mesh demo: a wrong link).
#pragma once
#include "maps/sockets.h"
#include "maps/active.h"

#define OPAQUE_CAP 8 // a record header (5 bytes) and a handshake type

// reads_tls: the thread (its syscall storage a, or NULL) made a TLS call
// the probes read.
static __always_inline int reads_tls(struct active_io *a)
{
	return a && a->tls.lib != 0;
}

// opaque_verdict is the verdict of a socket whose first message is a TLS
// record, moved by the thread of storage a: L7_OPAQUE when its TLS calls
// are not read.
static __always_inline __u8 opaque_verdict(struct active_io *a)
{
	return reads_tls(a) ? L7_NO : L7_OPAQUE;
}

// opaque_read reports whether an L7_OPAQUE socket's syscall comes from a
// thread whose TLS calls are read: the socket is then marked L7_NO and the
// syscall skipped, as every syscall of a plaintext-read TLS socket outside
// its library's calls.
static __always_inline int opaque_read(struct active_io *a, struct sock *sk)
{
	if (!reads_tls(a))
		return 0;
	__u64 key = (__u64)sk;
	struct sock_state *s = bpf_map_lookup_elem(&sockets, &key);
	if (s && s->l7 != L7_NO) {
		s->l7 = L7_NO;
		sockets_moved(); // other threads may hold its L7_OPAQUE verdict (l7_skip's copies)
	}
	return 1;
}

// opaque_cap bounds the bytes captured of an L7_OPAQUE socket's syscall.
static __always_inline __u32 opaque_cap(__u8 verdict, __u32 cap)
{
	return verdict == L7_OPAQUE && cap > OPAQUE_CAP ? OPAQUE_CAP : cap;
}
