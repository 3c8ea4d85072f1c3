// Ring buffer carrying struct event to user space.
#pragma once
#include "wakes.h"
#include "stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

// wake_gap_ns: a CPU's programs wake the reader at most once per gap; 0:
// never (collector/ebpf ring.go wakeGapNs, set at load: 0 at the default poll).
const volatile __u64 wake_gap_ns = 0;

// Wake-ups: the reader polls the ring on a deadline (collector/ebpf
// Capture.read, ebpf.ring_poll), so records do not wake it: no
// BPF_RB_AVAIL_DATA query and no irq_work per record. (A forced wake-up per
// record while the reader lags cost every writer an irq_work; the default
// adaptive wake-up wakes per record whenever the reader has caught up,
// i.e. about once per syscall on a quiet ring.)
//
// But for a record of flags EVENT_PAST_COPY (event.h): its syscall moved
// bytes past its copy on an L7 socket, from which user space may tell the
// programs a body's range (bodies.h) that the socket's next syscalls need
// before the body ends. Such a record wakes the reader at once, at most
// once per wake_gap_ns on each CPU; the reader, having read one, reads
// again one to two gaps later (Capture.read), so a record not woken for
// waits about as long, whatever the poll.
static __always_inline __u64 rb_flags(__u8 flags)
{
	if (!wake_gap_ns || !(flags & EVENT_PAST_COPY))
		return BPF_RB_NO_WAKEUP;
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&wakes, &zero);
	if (!last)
		return BPF_RB_NO_WAKEUP; // a per-CPU array's slot is always there
	__u64 now = bpf_ktime_get_ns();
	if ((__s64)(now - *last) < (__s64)wake_gap_ns)
		return BPF_RB_NO_WAKEUP;
	*last = now;
	count(STAT_RING_WAKES);
	return BPF_RB_FORCE_WAKEUP;
}
