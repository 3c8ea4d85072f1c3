//go:build linux

package main

// The collector of zerotrace bench capture: `zerotrace collect` as a child
// process; its CPU, memory, metrics and BPF programs' run-time statistics.

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
)

func hasMetric(m map[string]float64, name string) bool { _, ok := m[name]; return ok }

// collector is `zerotrace collect` as a child process.
type collector struct {
	cmd     *exec.Cmd
	done    chan error
	metrics func() (map[string]float64, error)
}

func startCollector(c benchCaptureConfig, dir string) (*collector, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding own binary: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil { // collect wants its data directory to exist
		return nil, fmt.Errorf("creating collector dir: %w", err)
	}
	maddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	args := append([]string{"collect", "--data-dir", filepath.Join(dir, "data"), "--metrics-addr", maddr}, strings.Fields(c.collectArgs)...)
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir // relative default data dirs land in the temp dir
	logf, err := os.Create(filepath.Join(dir, "collect.log"))
	if err != nil {
		return nil, fmt.Errorf("creating collector log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting collector: %w", err)
	}
	col := &collector{cmd: cmd, done: make(chan error, 1), metrics: func() (map[string]float64, error) { return scrapeMetrics(maddr) }}
	go func() { col.done <- cmd.Wait(); logf.Close() }()
	select {
	case err := <-col.done:
		log, _ := os.ReadFile(filepath.Join(dir, "collect.log"))
		return nil, fmt.Errorf("collector exited during warm-up (%v): %s", err, log)
	case <-time.After(c.warmup):
	}
	// The collector serves /metrics once its captures are attached; on a
	// loaded machine that can take longer than the warm-up (seen at 3 s).
	if err := col.ready(collectorReadyWithin); err != nil {
		col.stop()
		log, _ := os.ReadFile(filepath.Join(dir, "collect.log"))
		return nil, fmt.Errorf("%w: %s", err, log)
	}
	return col, nil
}

// collectorReadyWithin bounds the wait for a collector's /metrics after its
// warm-up.
const collectorReadyWithin = 60 * time.Second

// ready waits until the collector answers on /metrics, up to within; an
// exit or the bound is an error.
func (c *collector) ready(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		_, err := c.metrics()
		if err == nil {
			return nil
		}
		if err := c.alive(); err != nil {
			return fmt.Errorf("collector exited before serving its metrics: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("collector not serving its metrics %v after its warm-up: %w", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *collector) alive() error {
	select {
	case err := <-c.done:
		c.done <- err
		return fmt.Errorf("collector exited during the benchmark: %v", err)
	default:
		return nil
	}
}

// cpu is the collector's user+system CPU time so far (/proc/pid/stat).
func (c *collector) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading the collector's CPU time: %w", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("reading the collector's CPU time: short stat %q", s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14 utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15 stime
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("reading the collector's CPU time: stat %q", s)
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// peakRSS is the collector's VmHWM in bytes.
func (c *collector) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading the collector's peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil || kb <= 0 {
				return 0, fmt.Errorf("reading the collector's peak RSS: %q", line)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("reading the collector's peak RSS: no VmHWM in its status")
}

// metric is one metric of a scrape; a metric the collector does not export
// is an error, never a zero.
func metric(m map[string]float64, name string) (float64, error) {
	v, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("the collector's metrics have no %s", name)
	}
	return v, nil
}

// stop asks the collector to flush and exit (SIGTERM), then kills it after 10 s.
func (c *collector) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// drain waits (up to 10 s) until the collector has read its ring buffer
// empty, so that one phase's backlog does not load the next one.
func (c *collector) drain() {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		m, err := c.metrics()
		if err != nil || m["zerotrace_ebpf_ringbuf_lag_bytes"] == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the spans of the last events
}

// scrapeMetrics reads a collector's /metrics: each metric's value summed
// over its label sets.
func scrapeMetrics(addr string) (map[string]float64, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("reading the collector's metrics: %w", err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		m[name] += v
	}
	return m, sc.Err()
}

// bpfStats reads the run-time statistics of the collector's BPF programs,
// found through its open file descriptors (fdinfo prog_id), by name.
func (c *collector) bpfStats() (map[string]*ebpf.ProgramStats, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", c.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the collector's fds: %w", err)
	}
	out := map[string]*ebpf.ProgramStats{}
	seen := map[uint64]bool{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			v, ok := strings.CutPrefix(line, "prog_id:")
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil || seen[id] {
				continue
			}
			seen[id] = true
			p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
			if err != nil {
				continue
			}
			info, ierr := p.Info()
			st, serr := p.Stats()
			p.Close()
			if ierr != nil || serr != nil {
				continue
			}
			if prev := out[info.Name]; prev != nil { // the same program attached twice (uprobes)
				st.Runtime += prev.Runtime
				st.RunCount += prev.RunCount
			}
			out[info.Name] = st
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no BPF programs among the collector's fds")
	}
	return out, nil
}
