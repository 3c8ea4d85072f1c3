// Handoff state of threads (or goroutines) that never received the request
// they work for (pool workers), per context key: pid_tgid or goroutine_key
// (bpf/socket/handoff.h); and the futex state the handoff reads.
#pragma once
#define HANDOFF_NONE 0     // idle: no context
#define HANDOFF_ARMED 1    // woken by a thread holding one request
#define HANDOFF_CALLING 2  // sent a call with that request's context
#define HANDOFF_ANSWERED 3 // read the call's response: its next wake is the verdict

struct handoff {
	__u64 ctx;      // context id handed over (0: none)
	__u64 token;    // the current call's token (a fresh id)
	__u64 sk;       // the call's socket
	__u64 ts;       // when armed, or when the call began
	__u64 answered; // the worker's last read of the call's response
	__u8 state;
	__u8 unbound;   // no confirmed handoff: wakes only claim the call
	__u8 reader;    // read the response to another thread's call
	__u8 item;      // handed with a work item taken from a queue (pyqueue.h):
	                // exact, for every call until the worker's next take
	__u8 _pad[4];
};

// Kept beside the thread's request state in the threads map (threads.h).

// Futexes in the traced namespaces: what each thread waits on now and what
// it wakes now (task storage: a lookup at each side, no hash update or
// delete per futex call), and per address how many threads wait on it now.
struct futex_state {
	__u64 addr;    // the futex the thread waits on (waiting)
	__u64 since;   // when the wait began
	__u64 woken;   // the futex the thread wakes (waking)
	__u8 waiting;
	__u8 waking;
	__u8 brief;    // a timed wait that times out within a runtime's switch
	               // interval (a scheduler's wait, such as CPython's GIL's),
	               // not a wait for a result (handoff.h SWITCH_NS)
	__u8 resuming; // a worker regaining the GIL right after reading its
	               // call's response (handoff.h "claims")
	__u8 _pad[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct futex_state);
} futexes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); // tgid << 32 ^ address
	__type(value, __u32); // waiters now
} futex_addrs SEC(".maps");
