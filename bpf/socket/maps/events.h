// Ring buffer carrying struct event to user space.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

// Wake-ups: the reader polls the ring on a short deadline (collector/ebpf
// Capture.read), so records go without waking it; the one record that
// brings the data waiting past WAKEUP_BYTES wakes it early. (A forced
// wake-up per record while the reader lags would cost every writer an
// irq_work; the default adaptive wake-up wakes per record whenever the
// reader has caught up, i.e. about once per syscall on a quiet ring.)
#define WAKEUP_BYTES (512 << 10)

static __always_inline __u64 rb_flags(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < WAKEUP_BYTES && avail + size >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}
