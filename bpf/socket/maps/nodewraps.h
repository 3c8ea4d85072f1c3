// Node.js async resources (bpf/socket/nodeasync.h): the server request an
// AsyncWrap's callbacks were last run for (a connection's HTTP parser: the
// request the loop read before it).
#pragma once
struct node_wrap {
	__u64 wrap; // the AsyncWrap object's address
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct node_wrap);
	__type(value, __u64); // context id of the request
} node_wraps SEC(".maps");
