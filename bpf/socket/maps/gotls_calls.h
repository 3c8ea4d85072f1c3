// Go crypto/tls calls in flight (bpf/socket/gotls.h): what the entry of
// (*tls.Conn).Write/Read saw, and the socket its syscalls touched meanwhile,
// keyed by the calling goroutine (goroutine.h goroutine_key), not the
// thread: the goroutine may park in the netpoller and resume on another
// thread, and its thread meanwhile runs other goroutines. An LRU: a call
// that never reaches a RET (its goroutine panicked) ages out.
#pragma once
#include "tlscalls.h"

struct gotls_call {
	struct tls_call call; // as tls.h's calls; lib TLS_LIB_GO
	__u64 chain_sk;       // the socket found from the Conn's fields at entry (0: none)
	__u64 len;            // a Write's len(b), from its entry
	__u8 sent;            // a Write's plaintext went out at its first write(2) (gotls.h)
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct gotls_call);
} gotls_calls SEC(".maps");

// Set to 1 by the loader once a Go executable's probes are attached: until
// then socket syscalls skip the goroutine lookup.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gotls_on SEC(".maps");
