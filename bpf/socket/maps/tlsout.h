// Egress plaintext of a memory-BIO TLS library (node) held until its
// thread writes the ciphertext (bpf/socket/tlsout.h): one event per thread
// at most, keyed by thread id.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, struct event);
} tls_out SEC(".maps");
