// The per-CPU counter of fresh context ids (bpf/socket/ids.h fresh_id).
#pragma once

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} id_counter SEC(".maps");
