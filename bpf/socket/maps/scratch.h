// Per-CPU scratch space where an event is built before it is copied into the
// ring buffer with its real size.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");
