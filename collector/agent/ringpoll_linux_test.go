package agent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/ebpf"
	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestCollectRingPoll: the running collector's ring reader wakes at the
// interval it was given. The BPF programs wake the reader only for records
// past their copy on L7 sockets (ebpf wakeGap), none of which an idle
// capture has, so there each poll is one voluntary
// context switch of the reader's thread; the ground truth is the kernel's
// count of them for all the collector's threads
// (/proc/<pid>/task/*/sched nr_voluntary_switches) over an idle window,
// with --ring-poll 10ms and with --ring-poll 500ms. If the setting did not
// reach the reader (both at the default), the two counts would be equal.
// A poll above the default is logged as a warning.
func TestCollectRingPoll(t *testing.T) {
	testenv.RequireRoot(t) // loads BPF programs
	bin := collectorBinary(t)
	const window = 2 * time.Second
	wakes := map[string]int{}
	for _, poll := range []string{"10ms", "500ms"} {
		dir := t.TempDir()
		p := startCollectProc(t, bin, "node: n\ndata_dir: "+dir+"\n", "--ring-poll", poll)
		p.alive(t, "after start")
		time.Sleep(time.Second) // past the start's own work
		a := voluntarySwitches(t, p.cmd.Process.Pid)
		time.Sleep(window)
		b := voluntarySwitches(t, p.cmd.Process.Pid)
		p.alive(t, "after the window")
		wakes[poll] = b - a
		// Longer than the default is a trade the log states (ring.go).
		if warned := strings.Contains(p.log.String(), "ring poll longer than the default"); warned != (poll != "10ms") {
			t.Errorf("--ring-poll %s: warned %v, want a warning only above the default (%v)\n%s", poll, warned, ebpf.DefaultRingPoll, tail(p.log.String(), 20))
		}
		if err := p.stop(t); err != nil {
			t.Errorf("--ring-poll %s: collector exit: %v\n%s", poll, err, tail(p.log.String(), 20))
		}
	}
	t.Logf("voluntary switches in %v: --ring-poll 10ms %d, 500ms %d", window, wakes["10ms"], wakes["500ms"])
	// 10 ms: ~200 reader wake-ups in the window; 500 ms: ~4.
	if d := wakes["10ms"] - wakes["500ms"]; d < 120 {
		t.Errorf("--ring-poll 10ms woke %d times more than 500ms in %v, want ≥ 120 (~196)", d, window)
	}
}

// voluntarySwitches sums nr_voluntary_switches over pid's threads.
func voluntarySwitches(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/sched", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("listing the collector's threads: %v (%d)", err, len(tasks))
	}
	n := 0
	for _, f := range tasks {
		fh, err := os.Open(f)
		if err != nil {
			continue // a thread that exited
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "nr_voluntary_switches" {
				c, _ := strconv.Atoi(strings.TrimSpace(v))
				n += c
			}
		}
		fh.Close()
	}
	return n
}
