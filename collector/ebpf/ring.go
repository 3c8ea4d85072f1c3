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
// is 0. The BPF programs write without waking it (bpf/socket/maps/events.h)
// but for the records from which user space may tell them a body's range
// (wakeGap), so a record waits in the ring up to this long. A longer poll
// hands the collector's pipeline larger batches less often (docs/capture.md,
// "Issue 29, seventeenth round"); it fills more of the ring between reads
// and delays the start of a new process's goroutine tracking and uprobes
// ("The poll's feedback paths"). The bench did not resolve a gain from 50
// ms ("eighteenth round"): the default stays 10 ms.
const DefaultRingPoll = 10 * time.Millisecond

// wakeGap: a record whose syscall moved bytes past its copy on an L7 socket
// (EventPastCopy) wakes the reader at once, at most once per wakeGap on
// each CPU (bpf/socket/maps/events.h rb_flags, wake_gap_ns); after reading
// one, the reader reads again between wakeGap and twice that later (read), so
// such a record waits in the ring at most about wakeGap whatever the poll.
// Those are the records from which the session may tell the programs a
// body's range (docs/l7.md), which the socket's next syscalls need before
// the body ends.
const wakeGap = time.Millisecond

// wakes reports whether records past their copy wake the reader at poll:
// only when it is longer than the default. With the wake at the default
// poll the bench's collector CPU per span and peak RSS were higher
// (docs/capture.md, "Issue 29, eighteenth round", not explained); at the
// default poll the ranges came in time without it.
func wakes(poll time.Duration) bool { return poll > DefaultRingPoll }

// wakeGapNs is the programs' wake_gap_ns at poll: 0, no wake, when the
// reader reads on its poll alone.
func wakeGapNs(poll time.Duration) uint64 {
	if wakes(poll) {
		return uint64(wakeGap)
	}
	return 0
}

// pastCopy reports whether rec, a ring record, is an event of flags
// EventPastCopy.
func pastCopy(rec []byte) bool {
	return len(rec) >= EventHeaderSize && rec[105]&EventPastCopy != 0
}

// CheckRingPoll validates a ring poll interval (ebpf.ring_poll;
// Options.RingPoll).
func CheckRingPoll(d time.Duration) error {
	if d < time.Millisecond || d > time.Second {
		return fmt.Errorf("ring_poll %v: want 1ms..1s", d)
	}
	return nil
}
