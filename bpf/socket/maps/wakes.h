// When this CPU's programs last woke the ring's reader (events.h rb_flags).
#pragma once

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); // CLOCK_MONOTONIC ns
} wakes SEC(".maps");
