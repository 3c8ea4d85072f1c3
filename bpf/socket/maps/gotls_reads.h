// Per Go *tls.Conn (bpf/socket/gotls.h): the TCP sequence number where the
// last read(2) one of its Reads made began. A Read served from records
// crypto/tls had buffered (grpc-go reads into a large buffer: one read(2)
// brings several records) makes no syscall and takes this one. Keyed like
// tls.h's tls_conns; an LRU (Go frees a Conn without telling).
#pragma once
#include "tlsconns.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_conn_key);
	__type(value, __u32);
} gotls_reads SEC(".maps");
