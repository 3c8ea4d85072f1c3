//go:build linux

package ebpf

import (
	"fmt"
	"time"
)

// DefaultRingMiB is the ring buffer's size when Options.RingMiB is 0. The
// BPF object declares 8 MiB (bpf/socket/maps/events.h); Start sets the
// map's size before loading. Under nginx + wrk on two shared cores the
// records arrive at ~40–80 MB/s, and 8 MiB filled whenever the collector
// was kept off the CPU (or behind) for more than ~0.1–0.2 s (docs/capture.md,
// "Ring-buffer drops").
const DefaultRingMiB = 32

// CheckRingMiB validates a ring size (ebpf.ring_mib; Options.RingMiB): the
// kernel wants a power-of-two number of pages.
func CheckRingMiB(n int) error {
	if n < 1 || n > 1024 || n&(n-1) != 0 {
		return fmt.Errorf("ring_mib %d: want a power of two in 1..1024", n)
	}
	return nil
}

// DefaultRingPoll is how often the ring reader wakes when Options.RingPoll
// is 0. The BPF programs write without waking it (bpf/socket/maps/events.h),
// so a record waits in the ring up to this long. A longer poll hands the
// collector's pipeline larger batches less often; it also delays what user
// space tells the programs back (a body's range, docs/l7.md) and fills more
// of the ring between reads (docs/capture.md, "Issue 29, seventeenth round").
// At 25 and 50 ms the range of a PostgreSQL row read in 16 KiB reads came
// too late and TestCapturePostgresLargeRow failed (a pipelined row's next
// response lost in some runs): keep it at 10 ms unless that test passes.
const DefaultRingPoll = 10 * time.Millisecond

// CheckRingPoll validates a ring poll interval (ebpf.ring_poll;
// Options.RingPoll).
func CheckRingPoll(d time.Duration) error {
	if d < time.Millisecond || d > time.Second {
		return fmt.Errorf("ring_poll %v: want 1ms..1s", d)
	}
	return nil
}
