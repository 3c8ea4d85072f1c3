// Work items in CPython's queues (bpf/socket/pyqueue.h): the request whose
// thread put each item, until a worker takes it.
#pragma once
struct py_item {
	__u64 item; // the item object's address
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct py_item);
	__type(value, __u64); // context id of the request
} py_items SEC(".maps");
