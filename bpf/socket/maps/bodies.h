// Message bodies the collector counts by length (bpf/socket/bodies.h): per
// socket and direction, the stream range (TCP sequence numbers) of the rest
// of a message whose length user space knows from its head. Written by user
// space, deleted by BPF when the range is passed or the socket closes.
#pragma once
struct body_key {
	__u64 sk;
	__u8 dir; // DIR_EGRESS / DIR_INGRESS
	__u8 _pad[7];
};

struct body_range {
	__u32 start; // sequence number of the first byte after the head's chunk
	__u32 end;   // ...and of the byte after the message
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct body_key);
	__type(value, struct body_range);
} bodies SEC(".maps");
