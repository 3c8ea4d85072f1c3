// The socket each TLS connection object (SSL *, *tls.Conn) last used
// (bpf/socket/tls.h): a call that made no syscall (records already
// buffered) goes out on that socket.
#pragma once

struct tls_conn_key {
	__u64 conn;
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_conn_key);
	__type(value, __u64); // struct sock address
} tls_conns SEC(".maps");
