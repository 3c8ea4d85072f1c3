// TLS calls in flight (bpf/socket/tls.h): what a TLS library call's entry
// saw, and the socket its syscalls touched meanwhile. Task-local storage of
// the calling thread: the read/write syscall tracepoints look it up on
// every socket syscall (a task storage lookup, no hash).
#pragma once
struct tls_call {
	__u64 conn;   // the library's connection object (SSL *, *tls.Conn): the connection key
	__u64 buf;    // plaintext buffer
	__u64 lenp;   // where the call stores its byte count (SSL_*_ex), or 0
	__u64 ts;     // entry, CLOCK_MONOTONIC
	__u64 sk;     // struct sock a syscall of the call touched (0: none yet)
	__u64 last_in;     // socket the thread last read from outside a call (memory-BIO libraries: node)
	__u64 last_in_ts;  // and when
	__u32 last_in_seq; // its TCP sequence then
	__u32 seq;    // TCP sequence of the call's record: egress, its first data record; ingress, the last record read
	__u8 dir;     // DIR_EGRESS (write) / DIR_INGRESS (read)
	__u8 lib;     // TLS_LIB_*
	__u8 active;  // set at entry, cleared at return
	__u8 seq_set; // seq holds a syscall of the call's direction
	__u32 egress_min; // egress: fewer bytes than this before a write cannot hold the first data record (0: unknown)
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");
