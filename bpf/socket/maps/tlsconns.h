// The socket each TLS connection object (SSL *, *tls.Conn) last used
// (bpf/socket/tls.h): a call that made no syscall (records already
// buffered) goes out on that socket.
#pragma once
#include "gen.h"

struct tls_conn_key {
	__u64 conn;
	__u32 tgid;
	__u32 _pad;
};

struct tls_sock {
	__u64 sk;    // struct sock address
	__u64 tuple; // its addresses and ports then (l7.h sock_tuple): a socket reallocated at sk is not it
	__u8 chained; // a Go *tls.Conn whose fields lead to sk (gotls.h): its next call's entry need not follow them
	__u8 _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_conn_key);
	__type(value, struct tls_sock);
} tls_conns SEC(".maps");

// tls_conns_gen counts the changes to tls_conns (updates, during which the
// LRU may evict, and deletions), each made after the change: a thread's
// copy of a mapping (struct tls_mapped) read at gen still holds while gen
// has not moved.
GENERATION_MAP(tls_conns_gen);
