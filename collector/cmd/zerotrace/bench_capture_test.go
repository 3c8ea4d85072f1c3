//go:build linux

package main

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// TestBPFIO: the programs' run time is over the syscalls the workload made
// only when the programs ran for at least those; a statistics snapshot that
// did not move (statistics off, programs detached) or a read/write program
// missing from a snapshot is an error, never 0 ns.
func TestBPFIO(t *testing.T) {
	st := func(runs uint64, ns time.Duration) *ebpf.ProgramStats {
		return &ebpf.ProgramStats{RunCount: runs, Runtime: ns}
	}
	a := map[string]*ebpf.ProgramStats{
		"enter_write": st(10, 1000), "exit_write": st(10, 2000),
		"enter_read": st(5, 500), "exit_read": st(5, 700),
		"sched_waking": st(0, 0),
	}
	b := map[string]*ebpf.ProgramStats{
		"enter_write": st(10+300, 1000+30000), "exit_write": st(10+300, 2000+60000),
		"enter_read": st(5+200, 500+20000), "exit_read": st(5+200, 700+40000),
		"sched_waking": st(1000, 900000), // not a read/write program: neither its runs nor its ns
	}
	ns, calls, err := bpfIO(a, b, 400)
	if err != nil || ns != 150000 || calls != 500 {
		t.Errorf("bpfIO = %v ns over %v syscalls, %v; want 150000 ns over 500, no error", ns, calls, err)
	}
	// The host's programs ran for fewer syscalls than the workload made.
	if ns, calls, err := bpfIO(a, b, 501); err == nil {
		t.Errorf("bpfIO with a workload of 501 syscalls = %v ns over %v, no error; want an error", ns, calls)
	}
	// Statistics that did not move.
	if ns, calls, err := bpfIO(a, a, 400); err == nil {
		t.Errorf("bpfIO over unchanged statistics = %v ns over %v, no error; want an error", ns, calls)
	}
	if _, err := metric(map[string]float64{"zerotrace_spans_total": 0}, "zerotrace_ebpf_drop_ringbuf_total"); err == nil {
		t.Error("metric of a metric the collector does not export: no error")
	}
	if v, err := metric(map[string]float64{"zerotrace_spans_total": 0}, "zerotrace_spans_total"); v != 0 || err != nil {
		t.Errorf("metric of an exported 0 = %v, %v", v, err)
	}
}

// TestPrintCaptureDrops: ring-buffer and packet drops are summed over the
// rounds, each round's count printed: drops in two rounds of five are not
// a median's 0.
func TestPrintCaptureDrops(t *testing.T) {
	if !haveCollect() {
		t.Fatal("this binary has no collect command")
	}
	rounds := make([]captureRound, 5)
	for i := range rounds {
		rounds[i] = captureRound{loopBase: 100, loopTraced: 150, loopEmpty: 120, bulkBase: 1000, bulkTraced: 990,
			bulkCPUBase: 1, bulkCPUTraced: 1.1, bulkCPUEmpty: 1.05, rpsBase: 10000, rpsTraced: 9500,
			rpsApartBase: 10000, rpsApartTraced: 9800, events: 1000, pktSeen: true}
	}
	rounds[1].ringDrops, rounds[1].dropsLoop = 7, 7
	rounds[3].ringDrops, rounds[3].dropsBulk, rounds[3].pktDrops = 2, 2, 4
	out := captureStdout(t, func() { printCapture(benchCaptureConfig{bulkMiB: 512}, rounds) })
	for _, want := range []string{
		"ringbuf_drops: 9 in 5 rounds of 5000 events (per round 0, 7, 0, 2, 0; syscall loops 7, bulk streams 2)",
		"packet_drops: 4 in 5 rounds (per round 0, 0, 0, 4, 0)",
	} {
		if !strings.Contains(out, want+"  (goal 0") {
			t.Errorf("printCapture printed\n%s\nwant a line %q", out, want)
		}
	}
}

// captureStdout is what f prints on stdout.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	f()
	os.Stdout = stdout
	w.Close()
	return <-done
}

// TestCollectorReady: the bench waits past the warm-up for a collector
// that is slow to serve its metrics (main failed its first round twice on
// a loaded machine: connection refused after the 3 s warm-up), and fails
// on a collector that exited or never serves them.
func TestCollectorReady(t *testing.T) {
	refused := errors.New("connection refused")
	tries := 0
	slow := &collector{done: make(chan error, 1), metrics: func() (map[string]float64, error) {
		if tries++; tries < 4 {
			return nil, refused
		}
		return map[string]float64{}, nil
	}}
	if err := slow.ready(10 * time.Second); err != nil || tries != 4 {
		t.Errorf("a slow collector: %v after %d scrapes, want ready after 4", err, tries)
	}
	never := &collector{done: make(chan error, 1), metrics: func() (map[string]float64, error) { return nil, refused }}
	if err := never.ready(300 * time.Millisecond); err == nil || !errors.Is(err, refused) {
		t.Errorf("a collector that never serves: %v", err)
	}
	exited := &collector{done: make(chan error, 1), metrics: func() (map[string]float64, error) { return nil, refused }}
	exited.done <- errors.New("exit status 1")
	if err := exited.ready(10 * time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("a collector that exited: %v", err)
	}
}
