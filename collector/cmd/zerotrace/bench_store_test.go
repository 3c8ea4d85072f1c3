//go:build linux

package main

import (
	"context"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/store"
)

// TestFillStore: bench store's writer stores every span the generator
// made on its own thread (counted by the store's reader, not by fillStore),
// and both CPU figures come from the same run: the generating thread's own
// and the whole process's, which is more.
func TestFillStore(t *testing.T) {
	dir := t.TempDir()
	const n = 20 * 38 * 10 // ten seconds of span time at 20 requests/s
	from, to, cpu, written, err := fillStore(dir, n, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if written != n || from <= 0 || to <= from {
		t.Errorf("fillStore wrote %d spans from %d to %d, want %d spans over a time range", written, from, to, n)
	}
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Spans != int64(written) {
		t.Errorf("the store holds %d spans, fillStore says %d written", st.Spans, written)
	}
	if cpu.gen <= 0 || cpu.process <= cpu.gen {
		t.Errorf("CPU of the run %v, of the generating thread %v: want both measured, the run's more", cpu.process, cpu.gen)
	}
	// The generating thread's figure is its own, not the process's: a
	// thread that took the process's CPU would be every other thread's
	// too. Measured shares: 14–24 ms of 210–290 ms on a busy 2-core
	// machine, 56 of 273 ms in CI; only a figure at the process's own is
	// wrong, so the bound is half of it, not a ratio of speeds.
	if cpu.gen*2 > cpu.process {
		t.Errorf("the generating thread took %v of the run's %v: want its own CPU, under half the run's", cpu.gen, cpu.process)
	}
	t.Logf("%d spans: process %v, generating thread %v, storing %v", written, cpu.process, cpu.gen, cpu.store())
}
