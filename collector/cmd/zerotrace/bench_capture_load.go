//go:build linux

package main

// The workloads of zerotrace bench capture: the syscall loop, the bulk
// stream, nginx and wrk, and the CPUs they run on.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// wrkApart runs wrk with nginx and wrk on CPU 0 only (and the collector,
// pid ≠ 0, on CPU 1), then gives them all CPUs back; 0 with one CPU.
func wrkApart(c benchCaptureConfig, nginx benchNginx, collector int) (float64, error) {
	if runtime.NumCPU() < 2 {
		return 0, nil
	}
	all := make([]int, runtime.NumCPU())
	for i := range all {
		all[i] = i
	}
	defer pinThreads(nginx.pid, all...)
	if err := pinThreads(nginx.pid, 0); err != nil {
		return 0, err
	}
	if collector != 0 {
		defer pinThreads(collector, all...)
		if err := pinThreads(collector, 1); err != nil {
			return 0, err
		}
	}
	return runWrk(c, nginx.addr, true)
}

// pinThreads sets the CPU affinity of every thread of pid; threads it
// creates later inherit it. Twice, for threads created meanwhile.
func pinThreads(pid int, cpus ...int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return fmt.Errorf("listing the threads of %d: %w", pid, err)
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				unix.SchedSetaffinity(tid, &set) // a thread that just ended is no error
			}
		}
	}
	return nil
}

// bulkStream sends mib MiB of non-L7 bytes through a loopback TCP
// connection (64 KiB blocking writes and reads, one OS thread each, both on
// CPU 0) and returns its MB/s, the CPU time (user + system) its two
// threads used, which is where the capture's programs run, and the reads
// and writes it made. On one CPU the
// two threads take turns the same way every run; left free (or one per
// CPU), their CPU for the same bytes varied by ±20% from run to run, more
// than what the capture adds.
func bulkStream(mib int) (mbps float64, cpu time.Duration, syscalls int, err error) {
	cl, sv, err := loopbackPair()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("bulk: %w", err)
	}
	defer unix.Close(cl)
	total := int64(mib) << 20
	type result struct {
		cpu   time.Duration
		reads int
		err   error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer pinSelf(0)()
		defer unix.Close(sv)
		c0 := threadCPU()
		buf := make([]byte, 64<<10)
		var got int64
		reads := 0
		for got < total {
			n, err := unix.Read(sv, buf)
			reads++
			if err != nil || n == 0 {
				done <- result{err: fmt.Errorf("bulk read after %d bytes: %v", got, err)}
				return
			}
			got += int64(n)
		}
		done <- result{cpu: threadCPU() - c0, reads: reads}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer pinSelf(0)()
	// 0xAB at every offset: no L7 protocol starts like that, so a capture
	// that tells L7 from the rest can mark this stream on every round.
	buf := bytes.Repeat([]byte{0xab}, 64<<10)
	start, c0 := time.Now(), threadCPU()
	writes := 0
	for sent := int64(0); sent < total; {
		n, err := unix.Write(cl, buf)
		writes++
		if err != nil {
			return 0, 0, 0, fmt.Errorf("bulk write: %w", err)
		}
		sent += int64(n)
	}
	sender := threadCPU() - c0
	r := <-done
	if r.err != nil {
		return 0, 0, 0, r.err
	}
	if sender <= 0 || r.cpu <= 0 {
		return 0, 0, 0, fmt.Errorf("bulk: the threads' CPU time not measured (sender %v, receiver %v)", sender, r.cpu)
	}
	return float64(total) / 1e6 / time.Since(start).Seconds(), sender + r.cpu, writes + r.reads, nil
}

// pinSelf keeps the calling OS thread (locked to its goroutine) on cpu
// until the returned function gives it its former CPUs back.
func pinSelf(cpu int) (restore func()) {
	var was, set unix.CPUSet
	if unix.SchedGetaffinity(0, &was) != nil {
		return func() {}
	}
	set.Set(cpu)
	unix.SchedSetaffinity(0, &set)
	return func() { unix.SchedSetaffinity(0, &was) }
}

// threadCPU is the calling OS thread's user + system CPU time so far.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopbackPair returns the two ends of a new blocking loopback TCP
// connection (client, server), TCP_NODELAY on both.
func loopbackPair() (cl, sv int, err error) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return -1, -1, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		return -1, -1, fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return -1, -1, fmt.Errorf("getsockname: %w", err)
	}
	if cl, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return -1, -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Connect(cl, sa); err != nil {
		unix.Close(cl)
		return -1, -1, fmt.Errorf("connect: %w", err)
	}
	if sv, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC); err != nil {
		unix.Close(cl)
		return -1, -1, fmt.Errorf("accept: %w", err)
	}
	unix.SetsockoptInt(cl, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptInt(sv, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return cl, sv, nil
}

var (
	benchReq  = []byte("GET /bench/syscall HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: zt-bench\r\n\r\n")
	benchResp = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
)

// syscallLoop does iters request/response exchanges over one blocking
// loopback TCP connection (client write, server read, server write, client
// read) and returns the mean ns per syscall and the syscalls it made (4 per
// exchange, more when a read returns part of a message).
func syscallLoop(iters int) (nsPerSyscall float64, syscalls int, err error) {
	cl, sv, err := loopbackPair()
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(cl)
	defer unix.Close(sv)
	buf := make([]byte, 4096)
	readFull := func(fd, n int) error {
		for got := 0; got < n; {
			m, err := unix.Read(fd, buf[:n-got])
			syscalls++
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
			return 0, 0, fmt.Errorf("write: %w", err)
		}
		if err := readFull(sv, len(benchReq)); err != nil {
			return 0, 0, err
		}
		if _, err := unix.Write(sv, benchResp); err != nil {
			return 0, 0, fmt.Errorf("write: %w", err)
		}
		if err := readFull(cl, len(benchResp)); err != nil {
			return 0, 0, err
		}
		syscalls += 2
	}
	return float64(time.Since(start).Nanoseconds()) / float64(syscalls), syscalls, nil
}

// benchNginx is the bench's nginx: one process (no master, one worker).
type benchNginx struct {
	addr string
	// httpsAddr serves the same over TLS with the certificate cert, key
	// (bench_capture_tls.go).
	httpsAddr, cert, key string
	pid                  int
	stop                 func()
}

// startBenchNginx runs Debian's nginx on a free loopback port under dir.
func startBenchNginx(dir string) (n benchNginx, err error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return n, fmt.Errorf("finding nginx: %w", err)
	}
	// Both ports picked while both are held: two picks one after the
	// other can give the same port (nginx then refused the plain one,
	// which shared the https one's socket, for want of a certificate).
	addrs, err := freeLoopbackAddrs(2)
	if err != nil {
		return n, err
	}
	addr := addrs[0]
	n.httpsAddr = addrs[1]
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return n, fmt.Errorf("creating nginx prefix: %w", err)
	}
	https, err := benchNginxTLS(prefix, &n)
	if err != nil {
		return n, err
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
%[3]s}
`, prefix, addr, https)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return n, fmt.Errorf("writing nginx config: %w", err)
	}
	cmd := exec.Command("nginx", "-p", prefix, "-c", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return n, fmt.Errorf("starting nginx: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			n.addr, n.pid, n.stop = addr, cmd.Process.Pid, stop
			return n, nil
		}
		if time.Now().After(deadline) {
			stop()
			return n, fmt.Errorf("nginx not ready on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeLoopbackAddr returns a loopback address with a TCP port free now,
// for a child process to listen on.
func freeLoopbackAddr() (string, error) {
	addrs, err := freeLoopbackAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// freeLoopbackAddrs is n free loopback addresses, all different.
func freeLoopbackAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a port: %w", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// runWrk runs wrk against addr (host:port, or a URL) and returns its
// Requests/sec; on CPU 0 only when cpu0.
func runWrk(c benchCaptureConfig, addr string, cpu0 bool) (float64, error) {
	url := addr
	if !strings.Contains(addr, "://") {
		url = "http://" + addr + "/"
	}
	secs := max(1, int(c.wrkDuration.Round(time.Second).Seconds()))
	args := []string{"wrk", "-t", strconv.Itoa(c.wrkThreads), "-c", strconv.Itoa(c.wrkConns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s", url}
	if cpu0 {
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
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
