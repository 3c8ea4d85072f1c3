// Node.js event-loop turns (bpf/socket/nodeasync.h): per thread, the
// callback scopes open now and what the turn works for. Task storage of the
// thread, set by the scopes' uprobes.
#pragma once
#define NODE_SCOPES 8 // callback scopes followed per thread, nested

struct node_turn {
	__u64 scopes[NODE_SCOPES];  // open InternalCallbackScope objects, outermost first
	__u64 closing[NODE_SCOPES]; // scopes whose Close() runs now, innermost last
	__u64 ctx;       // the request the turn works for (0: none known)
	__u64 cause;     // a server request read by the loop since the last turn (0: none)
	__u64 next_wrap; // the AsyncWrap whose MakeCallback is about to open a scope
	__u8 depth;      // scopes open (entries of scopes[])
	__u8 ncl;        // entries of closing[]
	__u8 lost;       // more than NODE_SCOPES nested, or a scope's end not seen: the turn is unknown
	__u8 loop;       // the thread ran a callback scope: it is a Node.js event loop
	__u8 _pad[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct node_turn);
} node_turns SEC(".maps");
