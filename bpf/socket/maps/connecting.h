// connect(2) in flight: the fd, for the exit. Task-local storage of the
// calling thread, like maps/active.h: an LRU hash update at entry and delete
// at exit cost ~1 µs per connect here (bench capture, enter/exit_connect).
#pragma once
struct connect_io {
	__s64 fd;
	__u8 pending; // set by the entry, cleared by the exit
	__u8 _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct connect_io);
} connecting SEC(".maps");
