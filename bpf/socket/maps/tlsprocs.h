// Processes whose TLS the probes saw (tgid -> struct tls_proc), written by
// the probes themselves (gotls.h tls_proc_mark): a socket syscall makes the
// Go TLS checks (gotls.h gotls_syscall) only in a process listed here, so
// that the syscalls of every other process on the host skip their lookups.
// Per process, not per thread: a goroutine inside a crypto/tls call may
// block (the netpoller after EAGAIN, a mutex, preemption) and make the
// call's next syscall on another thread. A plain hash, never an LRU: a
// process that lost its entry would skip the checks its calls need; when
// the map is full tls_procs_gen.all opens the checks for every process.
// A process's entry goes at its exit or exec (procs.h).
#pragma once

struct tls_proc {
	__u8 calls; // a Go crypto/tls call's entry ran in it (gotls_calls may hold its goroutines)
	__u8 socks; // tls_socks maps a socket to a connection of it (tls.h tls_map)
	__u8 _pad[2];
};

#define TLS_PROC_CALLS 1
#define TLS_PROC_SOCKS 2

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tls_proc);
} tls_procs SEC(".maps");

// gen is bumped after every member of tls_procs newly set (a thread caches
// its process's bits until it moves: maps/active.h tp_gen); all is set for
// good when tls_procs was full.
struct tls_procs_gen {
	__u32 gen;
	__u32 all;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_procs_gen);
} tls_procs_gen SEC(".maps");
