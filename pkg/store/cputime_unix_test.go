//go:build unix

package store

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (every thread: the
// garbage collector and Badger's goroutines too). Benchmarks report CPU per
// span from it, which a machine shared with other work inflates far less
// than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
