// Go processes whose goroutines the collector tracks (tgid → 1), filled by
// user space when it finds a Go program and attaches its uprobes.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} go_procs SEC(".maps");
