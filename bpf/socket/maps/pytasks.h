// CPython asyncio tasks (bpf/socket/asyncio.h): the id given to each task
// object when it was created, until it is freed.
#pragma once
struct py_task {
	__u64 task; // the Task object's address
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct py_task);
	__type(value, __u64); // the task's id (a fresh id: unique per task)
} py_tasks SEC(".maps");
