// Ring buffer carrying struct event to user space.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

// Wake-ups: the reader polls the ring on a short deadline (collector/ebpf
// Capture.read), so records go without waking it until WAKEUP_BYTES are
// waiting; then each record wakes it until it catches up.
#define WAKEUP_BYTES (512 << 10)

static __always_inline __u64 rb_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}
