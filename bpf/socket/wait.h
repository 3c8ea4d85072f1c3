// Event-loop waits (collector/ebpf/forward.go, docs/assembly.md "Forwarding
// threads"). A proxy that reads a request and connects its upstream in the
// same turn of its event loop never waits in between; one that connects
// when a timer fires (a delayed request) went back to epoll_wait first. So
// a thread's entry into epoll_wait, poll or select sets a bit in its
// storage (maps/active.h), and the next socket event it sends carries
// EVENT_WAITED and clears it. Only threads that have the storage (those
// that made a kept socket syscall or a TCP connect) pay more than the
// lookup: one task-storage lookup per wait, no map update.
#pragma once
#include "maps/active.h"

// wait_enter notes that the current thread entered a wait.
static __always_inline int wait_enter(void)
{
	struct active_io *a = bpf_task_storage_get(&active, bpf_get_current_task_btf(), 0, 0);
	if (a && !a->waited)
		a->waited = 1;
	return 0;
}

// wait_flags returns the flags of a socket event the thread whose storage
// is a sends (NULL: it has none, so no wait of it was noted).
static __always_inline __u8 wait_flags(struct active_io *a)
{
	return a && a->waited ? EVENT_WAITED : 0;
}

// wait_sent forgets the thread's wait once an event carrying it went out.
static __always_inline void wait_sent(struct active_io *a, __u8 flags)
{
	if (a && (flags & EVENT_WAITED))
		a->waited = 0;
}
