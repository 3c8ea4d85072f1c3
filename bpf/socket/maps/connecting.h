// connect(2) in flight: the fd, by pid_tgid, for the exit.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __s64);
} connecting SEC(".maps");
