// Network namespaces to capture (by inode); empty with scope_enabled = 0 means all.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} netns_scope SEC(".maps");
