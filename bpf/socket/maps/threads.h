// Request context of each thread (bpf/socket/causality.h): the id of the
// server request the thread is serving, how many server requests it holds
// open, and whether it held more than one at once since it last held none.
#pragma once
struct thread_ctx {
	__u64 id;        // context id of the latest open server request
	__u64 ts;        // last server request received (idle reclaim)
	__u32 open;      // server requests received, response not yet begun
	__u8 ambiguous;  // open was > 1 since it was last 0: the thread multiplexes
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);              // pid_tgid
	__type(value, struct thread_ctx);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} id_counter SEC(".maps");
