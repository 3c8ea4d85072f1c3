// Syscalls in flight, keyed by pid_tgid: what the entry saw, for the exit.
#pragma once
struct active_io {
	__u64 ts;
	__u64 buf;      // user buffer (first iovec for the vectored calls)
	__u64 buflen;   // its length
	__u64 sk;
	__u32 seq;
	__u8 dir;
	__u8 vectored;  // buf points to a struct iovec
	__u8 msg;       // buf points to a struct user_msghdr
	__u8 mmsg;      // ...the first of a struct mmsghdr array: its length is msg_len
	__u8 l7;        // the socket's L7 verdict at entry (l7.h)
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct active_io);
} active SEC(".maps");
