// Ring buffer carrying struct event to user space.
#pragma once
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

// Wake-ups: the reader polls the ring on a short deadline (collector/ebpf
// Capture.read), so records never wake it: no BPF_RB_AVAIL_DATA query and no
// irq_work per record. At the 10 ms poll the 8 MiB ring holds 800 MB/s of
// records. (A forced wake-up per record while the reader lags cost every
// writer an irq_work; the default adaptive wake-up wakes per record whenever
// the reader has caught up, i.e. about once per syscall on a quiet ring.)
static __always_inline __u64 rb_flags(__u64 size)
{
	return BPF_RB_NO_WAKEUP;
}
