// The asyncio task whose step a thread runs now (bpf/socket/asyncio.h):
// task storage of the thread, set and cleared by the step's uprobes.
#pragma once
struct py_running {
	__u64 task;  // id of the task whose step runs (0: none, or not known)
	__u32 depth; // steps entered and not yet returned
	__u8 loop;   // the thread ran a task's step: it is an event loop's
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct py_running);
} py_running SEC(".maps");
