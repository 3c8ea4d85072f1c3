package store

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The two-process and crash tests re-execute this test binary as the writer
// process: TestMain runs writerProcess when ZT_STORE_WRITER names a data dir.
//
// TestMain also limits the minimization of new interesting fuzz inputs to
// 100 tries unless -fuzzminimizetime is given: with inputs of tens of KiB,
// Go's default of 60 s per input stalls `go test -fuzz FuzzIndexBlock` at 0
// executions per second (docs/fuzzing.md).
func TestMain(m *testing.M) {
	if dir := os.Getenv("ZT_STORE_WRITER"); dir != "" {
		os.Exit(writerProcess(dir))
	}
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		flag.Set("test.fuzzminimizetime", "100x")
	}
	os.Exit(m.Run())
}

// writerProcess writes one span every 2 ms with ids counting from
// ZT_STORE_FIRST, printing "W <id> <unix-ns> <write-µs>" after each write,
// until SIGTERM (clean close) or SIGKILL.
func writerProcess(dir string) int {
	first, _ := strconv.ParseUint(os.Getenv("ZT_STORE_FIRST"), 10, 64)
	w, err := OpenWriter(WriterOptions{Dir: dir, Node: "node-p"})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	tmpl := fullSpan(0)
	out := bufio.NewWriter(os.Stdout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second) // bounded even if the parent dies
	for id := first; ; id++ {
		select {
		case <-term:
			if err := w.Close(); err != nil {
				fmt.Fprintln(out, "ERR", err)
			}
			fmt.Fprintln(out, "CLOSED")
			out.Flush()
			return 0
		case <-deadline:
			w.Close()
			return 2
		case <-tick.C:
		}
		s := tmpl
		now := time.Now()
		s.SpanID, s.StartNs, s.EndNs = id, now.UnixNano(), now.UnixNano()+1000
		s.ReqTCPSeq = uint32(id)
		t := time.Now()
		if err := w.Write(s); err != nil {
			fmt.Fprintln(out, "ERR", err)
		}
		fmt.Fprintf(out, "W %d %d %d\n", id, now.UnixNano(), time.Since(t).Microseconds())
		out.Flush()
	}
}

type written struct {
	id      uint64
	at      time.Time
	writeUs int64
}

// startWriter runs the writer process and collects what it reports.
type writerProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []written
	errs []string
	done chan struct{}
}

func startWriter(t *testing.T, dir string, first uint64) *writerProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "ZT_STORE_WRITER="+dir, "ZT_STORE_FIRST="+strconv.FormatUint(first, 10))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &writerProc{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			p.mu.Lock()
			switch {
			case len(f) == 4 && f[0] == "W":
				id, _ := strconv.ParseUint(f[1], 10, 64)
				ns, _ := strconv.ParseInt(f[2], 10, 64)
				us, _ := strconv.ParseInt(f[3], 10, 64)
				p.log = append(p.log, written{id, time.Unix(0, ns), us})
			case len(f) > 0 && f[0] == "ERR":
				p.errs = append(p.errs, sc.Text())
			}
			p.mu.Unlock()
		}
		cmd.Wait()
	}()
	return p
}

// exited reports whether the writer process has ended.
func (p *writerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *writerProc) snapshot() []written {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]written(nil), p.log...)
}

func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a writer process for several seconds")
	}
	dir := t.TempDir()
	p := startWriter(t, dir, 1)
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	// The reader queries while the writer writes, for 7 s and then until
	// the writer wrote 1000 spans (2,800–3,400 in 7 s here) and every span
	// of its first 2 s was seen: readable while the
	// writer holds the store, from sealed head shards (2-s seals). How
	// soon is a figure, printed (ADR 0001's goal, 5 s; 3.7 s worst
	// measured here on a busy 2-core machine, close enough for a loaded
	// one to pass it without a bug); only never is wrong, bounded by a
	// minute (30 seal intervals).
	seenAt := map[uint64]time.Time{}
	begin := time.Now()
	end, giveUp := begin.Add(7*time.Second), begin.Add(time.Minute)
	early := func() (n int) { // spans of the first 2 s not seen yet
		for _, w := range p.snapshot() {
			if _, ok := seenAt[w.id]; !ok && w.at.Before(begin.Add(2*time.Second)) {
				n++
			}
		}
		return n
	}
	queries := 0
	for time.Now().Before(end) || (early() > 0 || len(p.snapshot()) < 1000) && time.Now().Before(giveUp) {
		// The reader asks for everything written so far.
		got, err := r.Search(ctx, SearchQuery{Namespace: "bookinfo", Limit: 1 << 20})
		if err != nil {
			t.Fatalf("reader error while the writer writes: %v", err)
		}
		if _, err := r.Stats(ctx); err != nil {
			t.Fatalf("stats error while the writer writes: %v", err)
		}
		queries++
		now := time.Now()
		for _, s := range got {
			if _, ok := seenAt[s.SpanID]; !ok {
				seenAt[s.SpanID] = now
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	log := p.snapshot()
	if len(log) < 1000 {
		t.Fatalf("writer wrote only %d spans in a minute", len(log))
	}
	var worst time.Duration
	var maxWrite int64
	for _, w := range log {
		maxWrite = max(maxWrite, w.writeUs)
		if at, ok := seenAt[w.id]; ok {
			worst = max(worst, at.Sub(w.at))
		}
	}
	t.Logf("%d spans written, %d seen by %d reader queries in %v; worst write-to-readable %v (goal 5 s); slowest Write %d µs",
		len(log), len(seenAt), queries, time.Since(begin).Round(time.Millisecond), worst, maxWrite)
	if n := early(); n > 0 {
		t.Errorf("%d spans of the writer's first 2 s never seen while it wrote (a minute)", n)
	}
	if maxWrite > 2_000_000 {
		t.Errorf("a Write call blocked for %d µs while a reader was reading", maxWrite)
	}
	// Clean shutdown: the reader then sees every span.
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if len(p.errs) > 0 {
		t.Fatalf("writer errors: %v", p.errs)
	}
	log = p.snapshot()
	time.Sleep(RefreshInterval)
	got, err := r.Get(ctx, 0, 0, idsOf(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(log) {
		t.Fatalf("after close the reader sees %d of %d spans", len(got), len(log))
	}
}

func idsOf(ws []written) []uint64 {
	out := make([]uint64, len(ws))
	for i, w := range ws {
		out[i] = w.id
	}
	return out
}

func TestCrashKeepsSealedShards(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a writer process")
	}
	dir := t.TempDir()
	p := startWriter(t, dir, 1)
	// 4 s of writes (sealed heads and an unsealed one), and at least 500
	// spans: a writer process slow to start on a loaded machine has
	// written fewer by then (it gives up on its own after 60 s).
	for start := time.Now(); time.Since(start) < 4*time.Second || len(p.snapshot()) < 500; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 45*time.Second || p.exited() {
			break // judged below
		}
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	killed := time.Now()
	log := p.snapshot()
	if len(log) < 500 {
		t.Fatalf("writer wrote only %d spans before the kill", len(log))
	}
	// Restart: recovery seals what the dead writer left and keeps writing.
	p2 := startWriter(t, dir, 1_000_000)
	time.Sleep(1500 * time.Millisecond)
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	if len(p2.errs) > 0 {
		t.Fatalf("restarted writer errors: %v", p2.errs)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Get(context.Background(), 0, 0, idsOf(log))
	if err != nil {
		t.Fatalf("shards after the crash: %v", err)
	}
	have := map[uint64]bool{}
	for _, s := range got {
		have[s.SpanID] = true
	}
	var lost []written
	for _, w := range log {
		if !have[w.id] {
			lost = append(lost, w)
		}
	}
	t.Logf("%d spans written before kill -9, %d recovered, %d lost", len(log), len(got), len(lost))
	for _, w := range lost {
		if killed.Sub(w.at) > 1500*time.Millisecond {
			t.Fatalf("span %d written %v before the kill was lost (only the unflushed tail ≤ 1 s may be)", w.id, killed.Sub(w.at))
		}
	}
	// The restarted writer's spans are there too.
	got2, err := r.Get(context.Background(), 0, 0, idsOf(p2.snapshot()))
	if err != nil || len(got2) != len(p2.snapshot()) {
		t.Fatalf("restarted writer: %d of %d spans (%v)", len(got2), len(p2.snapshot()), err)
	}
}
