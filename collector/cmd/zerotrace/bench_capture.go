//go:build linux

package main

// zerotrace bench capture: the capture overhead figures of issue 3, printed
// as "name: value unit  (goal …)" lines:
//
//   - added ns per traced socket syscall: a bounded loop of HTTP-looking
//     writes/reads over a blocking loopback TCP connection, without and with
//     `zerotrace collect` running;
//   - nginx + wrk (keep-alive, small responses, loopback, bounded duration)
//     requests/s untraced, traced and their ratio;
//   - the collector's CPU per 10k spans/s and its peak RSS during the traced
//     wrk run.
//
// The collector is this same binary's `collect` subcommand run as a child
// process (extra arguments via -collect-args), so its CPU and RSS are
// measured from /proc. Without a registered `collect` command the traced
// figures are reported as n/a.

import (
	"bufio"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	register(command{
		name:    "bench capture",
		summary: "capture overhead: ns per traced syscall, nginx+wrk traced/untraced, collector CPU and RSS",
		run:     runBenchCapture,
	})
}

type benchCaptureConfig struct {
	quick       bool
	iters       int
	rounds      int
	wrkDuration time.Duration
	wrkConns    int
	wrkThreads  int
	collectArgs string
	warmup      time.Duration
}

func runBenchCapture(args []string) int {
	var c benchCaptureConfig
	fs := flag.NewFlagSet("bench capture", flag.ContinueOnError)
	fs.BoolVar(&c.quick, "quick", false, "CI mode: a few seconds in all")
	fs.IntVar(&c.iters, "iters", 200000, "request/response round trips per syscall loop (4 syscalls each)")
	fs.IntVar(&c.rounds, "rounds", 3, "syscall loop repetitions (best is kept)")
	fs.DurationVar(&c.wrkDuration, "wrk-duration", 10*time.Second, "duration of each wrk run")
	fs.IntVar(&c.wrkConns, "wrk-connections", 16, "wrk keep-alive connections")
	fs.IntVar(&c.wrkThreads, "wrk-threads", 1, "wrk threads")
	fs.StringVar(&c.collectArgs, "collect-args", "", "extra arguments for `zerotrace collect` (space separated)")
	fs.DurationVar(&c.warmup, "collect-warmup", 3*time.Second, "time for the collector to attach before measuring")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.quick {
		c.iters, c.rounds, c.wrkDuration, c.warmup = 20000, 2, 2*time.Second, 2*time.Second
	}
	if err := benchCapture(c); err != nil {
		slog.Error("bench capture", "err", err)
		return 1
	}
	return 0
}

func benchCapture(c benchCaptureConfig) error {
	tmp, err := os.MkdirTemp("", "zt-bench-capture-")
	if err != nil {
		return fmt.Errorf("creating temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	_, haveCollect := commands["collect"]
	if !haveCollect {
		fmt.Println("# `zerotrace collect` is not in this binary: traced figures are n/a")
	}

	// 1. Syscall loop.
	base, err := bestLoop(c)
	if err != nil {
		return err
	}
	fmt.Printf("syscall_loop_untraced: %.0f ns/syscall\n", base)

	// 2. nginx + wrk untraced.
	nginxAddr, stopNginx, err := startBenchNginx(tmp)
	if err != nil {
		return err
	}
	defer stopNginx()
	rpsBase, err := runWrk(c, nginxAddr)
	if err != nil {
		return err
	}
	fmt.Printf("nginx_wrk_untraced: %.0f requests/s\n", rpsBase)

	if !haveCollect {
		fmt.Println("syscall_added: n/a ns/syscall  (goal ≤ 250)")
		fmt.Println("nginx_wrk_traced: n/a requests/s")
		fmt.Println("nginx_wrk_ratio: n/a  (goal ≥ 0.90)")
		fmt.Println("collector_cpu_per_10k_spans_s: n/a core  (goal ≤ 0.15)")
		fmt.Println("collector_peak_rss: n/a MB  (goal ≤ 300)")
		return nil
	}

	col, err := startCollector(c, tmp)
	if err != nil {
		return err
	}
	defer col.stop()

	traced, err := bestLoop(c)
	if err != nil {
		return err
	}
	fmt.Printf("syscall_loop_traced: %.0f ns/syscall\n", traced)
	fmt.Printf("syscall_added: %.0f ns/syscall  (goal ≤ 250)\n", traced-base)

	cpu0, t0 := col.cpu(), time.Now()
	rpsTraced, err := runWrk(c, nginxAddr)
	if err != nil {
		return err
	}
	cores := (col.cpu() - cpu0).Seconds() / time.Since(t0).Seconds()
	fmt.Printf("nginx_wrk_traced: %.0f requests/s\n", rpsTraced)
	fmt.Printf("nginx_wrk_ratio: %.3f  (goal ≥ 0.90)\n", rpsTraced/rpsBase)
	// Each request is one c-p span (wrk) and one s-p span (nginx).
	spansPerS := 2 * rpsTraced
	fmt.Printf("collector_cpu: %.3f core at %.0f spans/s (2 per request)\n", cores, spansPerS)
	fmt.Printf("collector_cpu_per_10k_spans_s: %.3f core  (goal ≤ 0.15)\n", cores/(spansPerS/10000))
	fmt.Printf("collector_peak_rss: %.1f MB  (goal ≤ 300)\n", float64(col.peakRSS())/(1<<20))
	if err := col.alive(); err != nil {
		return err
	}
	return nil
}

// bestLoop runs the syscall loop c.rounds times and keeps the fastest.
func bestLoop(c benchCaptureConfig) (float64, error) {
	best := 0.0
	for range c.rounds {
		ns, err := syscallLoop(c.iters)
		if err != nil {
			return 0, err
		}
		if best == 0 || ns < best {
			best = ns
		}
	}
	return best, nil
}

var (
	benchReq  = []byte("GET /bench/syscall HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: zt-bench\r\n\r\n")
	benchResp = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
)

// syscallLoop does iters request/response exchanges over one blocking
// loopback TCP connection (client write, server read, server write, client
// read) and returns the mean ns per syscall.
func syscallLoop(iters int) (float64, error) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(ln)
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(ln, lo); err != nil {
		return 0, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return 0, fmt.Errorf("getsockname: %w", err)
	}
	cl, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(cl)
	if err := unix.Connect(cl, sa); err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	sv, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("accept: %w", err)
	}
	defer unix.Close(sv)
	unix.SetsockoptInt(cl, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptInt(sv, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	buf := make([]byte, 4096)
	readFull := func(fd, n int) error {
		for got := 0; got < n; {
			m, err := unix.Read(fd, buf[:n-got])
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
			if m == 0 {
				return fmt.Errorf("read: unexpected EOF")
			}
			got += m
		}
		return nil
	}
	start := time.Now()
	for range iters {
		if _, err := unix.Write(cl, benchReq); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		if err := readFull(sv, len(benchReq)); err != nil {
			return 0, err
		}
		if _, err := unix.Write(sv, benchResp); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		if err := readFull(cl, len(benchResp)); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(4*iters), nil
}

// startBenchNginx runs Debian's nginx on a free loopback port under dir.
func startBenchNginx(dir string) (addr string, stop func(), err error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return "", nil, fmt.Errorf("finding nginx: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("picking a port: %w", err)
	}
	addr = l.Addr().String()
	l.Close()
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", nil, fmt.Errorf("creating nginx prefix: %w", err)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 10000000;
    server {
        listen %[2]s;
        default_type text/plain;
        location / { return 200 "ok"; }
    }
}
`, prefix, addr)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return "", nil, fmt.Errorf("writing nginx config: %w", err)
	}
	cmd := exec.Command("nginx", "-p", prefix, "-c", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting nginx: %w", err)
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("nginx not ready on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runWrk runs wrk against addr and returns its Requests/sec.
func runWrk(c benchCaptureConfig, addr string) (float64, error) {
	secs := max(1, int(c.wrkDuration.Round(time.Second).Seconds()))
	cmd := exec.Command("wrk", "-t", strconv.Itoa(c.wrkThreads), "-c", strconv.Itoa(c.wrkConns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "5s", "http://"+addr+"/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("running wrk: %w: %s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Requests/sec:"); ok {
			rps, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("parsing wrk output %q: %w", v, err)
			}
			return rps, nil
		}
	}
	return 0, fmt.Errorf("no Requests/sec in wrk output: %s", out)
}

// collector is `zerotrace collect` as a child process.
type collector struct {
	cmd  *exec.Cmd
	done chan error
}

func startCollector(c benchCaptureConfig, dir string) (*collector, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding own binary: %w", err)
	}
	args := append([]string{"collect", "--data-dir", filepath.Join(dir, "data"), "--metrics-addr", ""}, strings.Fields(c.collectArgs)...)
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
	col := &collector{cmd: cmd, done: make(chan error, 1)}
	go func() { col.done <- cmd.Wait(); logf.Close() }()
	select {
	case err := <-col.done:
		log, _ := os.ReadFile(filepath.Join(dir, "collect.log"))
		return nil, fmt.Errorf("collector exited during warm-up (%v): %s", err, log)
	case <-time.After(c.warmup):
	}
	return col, nil
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
func (c *collector) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14 utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15 stime
	const hz = 100                           // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// peakRSS is the collector's VmHWM in bytes.
func (c *collector) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
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
