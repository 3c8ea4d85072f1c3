// The TLS connection object mapped to each socket (the reverse of
// tls_conns, bpf/socket/tls.h): a socket's close forgets its object's
// entry, so that an object allocated later at the same address (node frees
// and reuses them) is not taken for the closed connection.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); // struct sock address
	__type(value, struct tls_conn_key);
} tls_socks SEC(".maps");
