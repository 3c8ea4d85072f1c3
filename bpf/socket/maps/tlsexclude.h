// Processes whose TLS calls are not read (config tls.exclude_processes), by
// comm; tls_exclude_any tells whether the map holds any (set by the loader).
#pragma once
struct tls_comm {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct tls_comm);
	__type(value, __u8);
} tls_exclude SEC(".maps");
