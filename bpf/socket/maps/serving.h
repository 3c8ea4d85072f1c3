// Processes serving requests (tgid → when their last server request began):
// only their threads' calls can belong to a request they do not hold, so
// only those calls become unbound calls (bpf/socket/handoff.h).
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} serving SEC(".maps");
