//go:build linux

package main

// TLS figures of bench capture (issue 25, docs/tls.md "Cost"):
//
//   - the TLS loop: python3's ssl module (system OpenSSL, SSL_write_ex and
//     SSL_read_ex) over a loopback TLS connection, client and server in one
//     thread so that a read never waits for its peer: each round trip is two
//     SSL_writes and two SSL_reads, each timed on its own; ns per call
//     untraced, with empty uprobes and uretprobes on the libssl the loop maps
//     (the floor: the breakpoint trap and return trampoline any uprobe tracer
//     of these functions pays here), and traced, each in the same round;
//   - the collector's OpenSSL programs' own run time per call (run-time
//     statistics on, the TLS loop run once more after the apps' figures),
//     and the sum of the programs that run for one SSL call (its entry and
//     return, the syscall programs of the reads or writes it makes
//     underneath, each less an empty program's run time): the figure
//     above the floor made of measured parts, which the trap's noise does
//     not move (docs/tls.md "Cost");
//   - nginx serving HTTPS (TLS 1.3, keep-alive) to wrk, requests/s untraced
//     and traced, and their ratio. wrk links the same libssl, so both ends'
//     SSL calls are traced.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/zerotrace/zerotrace/collector/probesite"
	"github.com/zerotrace/zerotrace/collector/tlslib"
)

// benchTLSLoop prints "<ns per SSL write> <ns per SSL read> <write(2)s per
// SSL write> <read(2)s per SSL read> <libssl path>":
// CPU time of the loop's thread (CLOCK_THREAD_CPUTIME_ID: the uprobe traps
// and the BPF programs run on it, in its context; time other tasks take the
// CPU from it does not count), per call, less the clock's own cost (an
// empty window, two clock reads in a row, timed in the same state: the
// clock is a syscall); the median over blocks of tlsBlock round trips of
// the block's mean, so that a block disturbed by the machine (another
// task's cache misses, a migration) does not move the figure. The syscalls
// are the process's read and write counts (/proc/self/io syscr, syscw:
// every read(2)/write(2), sockets' too) over the measured round trips.
const benchTLSLoop = `
import socket, ssl, statistics, sys, threading, time
cert, key, n, blk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
srv = []
t = threading.Thread(target=lambda: srv.append(sctx.wrap_socket(ls.accept()[0], server_side=True)))
t.start()
cl = cctx.wrap_socket(socket.create_connection(ls.getsockname()))
t.join(); sv = srv[0]
req = b"GET /tls-bench HTTP/1.1\r\nHost: bench\r\n\r\n"
resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
clk = time.thread_time_ns
def run(n):
    W, R, E = [], [], []
    w = r = z = 0
    for i in range(n):
        a = clk(); cl.write(req); b = clk(); sv.read(4096); c = clk(); sv.write(resp); d = clk(); cl.read(4096); e = clk(); f = clk()
        w += (b - a) + (d - c); r += (c - b) + (e - d); z += f - e
        if (i + 1) % blk == 0:
            W.append(w / (2 * blk)); R.append(r / (2 * blk)); E.append(z / blk); w = r = z = 0
    return W, R, E
def io():
    d = dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())
    return int(d["syscw"]), int(d["syscr"])
run(min(n, 500))
w0, r0 = io()
W, R, E = run(n)
w1, r1 = io()
z = statistics.median(E)
lib = [l.split()[-1] for l in open("/proc/self/maps") if "/libssl" in l]
print(statistics.median(W) - z, statistics.median(R) - z, (w1 - w0) / (2 * n), (r1 - r0) / (2 * n), lib[0] if lib else "-")
`

// tlsBlock: round trips per block of the TLS loop (its figure is the
// median of the blocks' means).
const tlsBlock = 100

// benchTLSRound is one round's TLS measurements.
type benchTLSRound struct {
	writeBase, readBase     float64 // ns per SSL call, untraced
	writeEmpty, readEmpty   float64 // with empty uprobes on the SSL functions
	writeTraced, readTraced float64
	rpsBase, rpsTraced      float64 // nginx HTTPS + wrk requests/s
	rpsEmpty                float64 // the same with empty uprobes
	rpsEmptySites           float64 // the same with the empty programs where the collector puts its probes (probesite)
	bpf                     map[string]float64
	progs                   tlsPrograms
}

// tlsPrograms is what the programs that run for one SSL call of the TLS
// loop cost (run-time statistics, ns per run, the TLS loop with them on):
// the OpenSSL entries and return, and the read/write syscall programs of
// the ciphertext syscalls each call makes underneath (tls.h tls_syscall),
// with how many it makes.
type tlsPrograms struct {
	writeEntry, readEntry float64 // ossl_write_ex or ossl_write_exw (and ossl_write), ossl_read_ex (and ossl_read)
	ret                   float64 // ossl_ret_ex (and ossl_ret): both directions' returns
	enterWrite, exitWrite float64 // the write(2) tracepoints' programs
	enterRead, exitRead   float64 // the read(2) tracepoints' programs
	writes, reads         float64 // write(2)s per SSL write, read(2)s per SSL read (the loop's own counts)
}

// perCall is the programs' run time per SSL write and per SSL read, each
// program's run less empty (the run time statistics count for a program
// that does nothing: their own clock reads and the program's call, which
// the floor's empty programs pay too).
func (p tlsPrograms) perCall(empty float64) (write, read float64) {
	write = p.writeEntry - empty + p.ret - empty + p.writes*(p.enterWrite-empty+p.exitWrite-empty)
	read = p.readEntry - empty + p.ret - empty + p.reads*(p.enterRead-empty+p.exitRead-empty)
	return write, read
}

// tlsProgramsOf reads tlsPrograms' run times from two statistics
// snapshots taken around the TLS loop; writes and reads are the loop's.
// The syscall programs run for the whole host: their mean per run is the
// loop's syscalls' and any other process's meanwhile (under the lock, the
// collector's own file writes: fewer, and cheaper, than the loop's).
func tlsProgramsOf(a, b map[string]*ebpf.ProgramStats, writes, reads float64) (tlsPrograms, error) {
	mean := func(names ...string) (float64, error) {
		var ns, runs float64
		for _, name := range names {
			n, r := progRun(a, b, name)
			ns, runs = ns+n, runs+r
		}
		if runs == 0 {
			return 0, fmt.Errorf("%s did not run during the TLS loop", strings.Join(names, ", "))
		}
		return ns / runs, nil
	}
	p := tlsPrograms{writes: writes, reads: reads}
	var errs [7]error
	p.writeEntry, errs[0] = mean("ossl_write_ex", "ossl_write_exw", "ossl_write")
	p.readEntry, errs[1] = mean("ossl_read_ex", "ossl_read")
	p.ret, errs[2] = mean("ossl_ret_ex", "ossl_ret")
	p.enterWrite, errs[3] = mean("enter_write")
	p.exitWrite, errs[4] = mean("exit_write")
	p.enterRead, errs[5] = mean("enter_read")
	p.exitRead, errs[6] = mean("exit_read")
	return p, errors.Join(errs[:]...)
}

// tlsLoopIters: round trips of the TLS loop (two SSL_writes, two SSL_reads).
func tlsLoopIters(c benchCaptureConfig) int { return max(1000, c.iters/4) }

// tlsLoopResult is one run of the TLS loop.
type tlsLoopResult struct {
	write, read   float64 // ns per SSL write, SSL read
	writes, reads float64 // write(2)s per SSL write, read(2)s per SSL read
	lib           string  // the libssl it mapped
}

// tlsLoop runs the TLS loop once.
func tlsLoop(c benchCaptureConfig, nginx benchNginx) (tlsLoopResult, error) {
	out, err := exec.Command("python3", "-c", benchTLSLoop, nginx.cert, nginx.key, strconv.Itoa(tlsLoopIters(c)), strconv.Itoa(tlsBlock)).CombinedOutput()
	if err != nil {
		return tlsLoopResult{}, fmt.Errorf("running the TLS loop: %w: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 5 || f[4] == "-" {
		return tlsLoopResult{}, fmt.Errorf("TLS loop output %q: want four figures and a libssl path", out)
	}
	var v [4]float64
	var errs [4]error
	for i := range v {
		v[i], errs[i] = strconv.ParseFloat(f[i], 64)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return tlsLoopResult{}, fmt.Errorf("parsing the TLS loop output: %w", err)
	}
	return tlsLoopResult{write: v[0], read: v[1], writes: v[2], reads: v[3], lib: f[4]}, nil
}

// tlsUntraced measures the TLS loop untraced and with empty uprobes, and
// nginx HTTPS + wrk untraced.
func tlsUntraced(c benchCaptureConfig, nginx benchNginx, r *benchTLSRound) error {
	l, err := tlsLoop(c, nginx)
	if err != nil {
		return err
	}
	r.writeBase, r.readBase = l.write, l.read
	if err := tlsEmptyUprobes(c, nginx, l.lib, r); err != nil {
		return err
	}
	r.rpsBase, err = runHTTPSWrk(c, nginx)
	return err
}

// runHTTPSWrk runs wrk against the bench nginx's HTTPS port (1 s with
// --quick, to keep the smoke run short).
func runHTTPSWrk(c benchCaptureConfig, nginx benchNginx) (float64, error) {
	if c.quick {
		c.wrkDuration = time.Second
	}
	return runWrk(c, "https://"+nginx.httpsAddr+"/", false)
}

// tlsEmptyUprobes runs the TLS loop with a program that does nothing on
// entry and return of the four functions the collector probes in lib, and
// nginx HTTPS + wrk with them (nginx and wrk map the same libssl here).
func tlsEmptyUprobes(c benchCaptureConfig, nginx benchNginx, lib string, r *benchTLSRound) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "zt_empty_up", Type: ebpf.Kprobe, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		return fmt.Errorf("loading an empty uprobe program: %w", err)
	}
	defer prog.Close()
	ex, err := link.OpenExecutable(lib)
	if err != nil {
		return fmt.Errorf("opening %s: %w", lib, err)
	}
	var links []link.Link
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	for _, sym := range []string{"SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"} {
		up, err := ex.Uprobe(sym, prog, nil)
		if err != nil {
			return fmt.Errorf("attaching an empty uprobe to %s in %s: %w", sym, lib, err)
		}
		links = append(links, up)
		ret, err := ex.Uretprobe(sym, prog, nil)
		if err != nil {
			return fmt.Errorf("attaching an empty uretprobe to %s in %s: %w", sym, lib, err)
		}
		links = append(links, ret)
	}
	l, err := tlsLoop(c, nginx)
	if err != nil {
		return err
	}
	r.writeEmpty, r.readEmpty = l.write, l.read
	if r.rpsEmpty, err = runHTTPSWrk(c, nginx); err != nil {
		return err
	}
	for _, l := range links {
		l.Close()
	}
	links = nil
	// The same programs where the collector puts its probes: at probe
	// sites where a function has them (collector/probesite), else at its
	// entry and return.
	f, err := os.Open(lib)
	if err != nil {
		return err
	}
	o, err := tlslib.FindOpenSSL(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", lib, err)
	}
	for _, fn := range []struct {
		at    uint64
		sites probesite.Sites
	}{{o.Write, o.WriteSites}, {o.Read, o.ReadSites}, {o.WriteEx, o.WriteExSites}, {o.ReadEx, o.ReadExSites}} {
		if fn.at == 0 {
			continue
		}
		for _, p := range fn.sites.Probes(fn.at) {
			attach := ex.Uprobe
			if p.Uretprobe {
				attach = ex.Uretprobe
			}
			l, err := attach("", prog, &link.UprobeOptions{Address: p.At})
			if err != nil {
				return fmt.Errorf("attaching an empty probe at %#x in %s: %w", p.At, lib, err)
			}
			links = append(links, l)
		}
	}
	r.rpsEmptySites, err = runHTTPSWrk(c, nginx)
	return err
}

// tlsTraced measures the TLS loop and nginx HTTPS + wrk with the collector
// running, then the loop again with run-time statistics on for the OpenSSL
// programs' ns per call and the programs that run per SSL call.
func tlsTraced(c benchCaptureConfig, col *collector, nginx benchNginx, r *benchTLSRound) error {
	l, err := tlsLoop(c, nginx)
	if err != nil {
		return err
	}
	r.writeTraced, r.readTraced = l.write, l.read
	col.drain()
	if r.rpsTraced, err = runHTTPSWrk(c, nginx); err != nil {
		return err
	}
	col.drain()
	return withStats(func() error {
		s0, err := col.bpfStats()
		if err != nil {
			return err
		}
		l, err := tlsLoop(c, nginx)
		if err != nil {
			return err
		}
		s1, err := col.bpfStats()
		if err != nil {
			return err
		}
		if r.progs, err = tlsProgramsOf(s0, s1, l.writes, l.reads); err != nil {
			return err
		}
		r.bpf = map[string]float64{}
		for name, ns := range bpfPerCall(s0, s1, false) {
			if strings.HasPrefix(name, "ossl_") {
				r.bpf[name] = ns
			}
		}
		if len(r.bpf) == 0 {
			return errors.New("the collector's OpenSSL programs did not run during the TLS loop")
		}
		return nil
	})
}

// benchNginxTLS makes a self-signed certificate under prefix and returns
// an nginx server block serving HTTPS on n.httpsAddr.
func benchNginxTLS(prefix string, n *benchNginx) (string, error) {
	n.cert, n.key = filepath.Join(prefix, "cert.pem"), filepath.Join(prefix, "key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-keyout", n.key, "-out", n.cert, "-days", "2", "-subj", "/CN=localhost").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("making the bench certificate: %w: %s", err, out)
	}
	return fmt.Sprintf(`    server {
        listen %s ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.3;
        default_type text/plain;
        location / { return 200 "ok"; }
    }
`, n.httpsAddr, n.cert, n.key), nil
}

// printTLSCapture prints the TLS figures (medians over the rounds).
func printTLSCapture(rounds []captureRound) {
	med := func(f func(r benchTLSRound) float64) float64 {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = f(r.tls)
		}
		return medianFloat(v)
	}
	fmt.Printf("tls_ssl_write_untraced: %.0f ns/call\n", med(func(r benchTLSRound) float64 { return r.writeBase }))
	fmt.Printf("tls_ssl_read_untraced: %.0f ns/call\n", med(func(r benchTLSRound) float64 { return r.readBase }))
	fmt.Printf("nginx_https_wrk_untraced: %.0f requests/s\n", med(func(r benchTLSRound) float64 { return r.rpsBase }))
	floorW := med(func(r benchTLSRound) float64 { return r.writeEmpty - r.writeBase })
	floorR := med(func(r benchTLSRound) float64 { return r.readEmpty - r.readBase })
	fmt.Printf("tls_uprobe_floor_ssl_write: %.0f ns/call  (empty uprobe + uretprobe on the SSL functions: what any uprobe tracer pays here; no goal; DeepFlow: no figure published)\n", floorW)
	fmt.Printf("tls_uprobe_floor_ssl_read: %.0f ns/call  (likewise)\n", floorR)
	fmt.Printf("nginx_https_wrk_empty_uprobes: %.0f requests/s\n", med(func(r benchTLSRound) float64 { return r.rpsEmpty }))
	fmt.Printf("nginx_https_wrk_ratio_empty_uprobes: %.3f  (the same empty uprobes as the floor, in nginx and wrk: what any uprobe tracer costs them here; no goal)\n",
		med(func(r benchTLSRound) float64 { return r.rpsEmpty / r.rpsBase }))
	if !haveCollect() {
		return
	}
	const peer = "DeepFlow: no per-call figure published"
	fmt.Printf("tls_ssl_write_added: %.0f ns/call  (goal ≤ floor %.0f + %d; %s)\n",
		med(func(r benchTLSRound) float64 { return r.writeTraced - r.writeBase }), floorW, tlsGoalAboveFloor, peer)
	fmt.Printf("tls_ssl_read_added: %.0f ns/call  (goal ≤ floor %.0f + %d; %s)\n",
		med(func(r benchTLSRound) float64 { return r.readTraced - r.readBase }), floorR, tlsGoalAboveFloor, peer)
	// The same goal on paired figures: each round's traced loop minus its
	// empty-uprobe loop, run minutes apart at most (the floor moves by
	// several µs between rounds on a shared machine; the medians of the
	// differences above each carry that noise).
	fmt.Printf("tls_ssl_write_above_floor: %.0f ns/call  (median over rounds of traced − empty uprobes, same round; goal ≤ %d; %s)\n",
		med(func(r benchTLSRound) float64 { return r.writeTraced - r.writeEmpty }), tlsGoalAboveFloor, peer)
	fmt.Printf("tls_ssl_read_above_floor: %.0f ns/call  (likewise; goal ≤ %d; %s)\n",
		med(func(r benchTLSRound) float64 { return r.readTraced - r.readEmpty }), tlsGoalAboveFloor, peer)
	// The same goal on measured parts: the programs' run time per call, which
	// the trap's cost (10–25 µs here, moving by ±5 µs between loops seconds
	// apart) does not enter. The goal is judged on these two lines.
	medRound := func(f func(r captureRound) float64) float64 {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = f(r)
		}
		return medianFloat(v)
	}
	empty := medRound(func(r captureRound) float64 { return r.bpfEmpty })
	tp := medRound(func(r captureRound) float64 { return r.loopEmpty - r.loopBase })
	fmt.Printf("tls_ssl_write_programs: %.0f ns/call  (median over rounds of the programs' run time per SSL write: entry + return + %.2f write(2) × (enter + exit), each run less the empty program's %.0f; the goal is judged here; goal ≤ %d; not in it: the syscall tracepoints' own cost, %.0f ns per syscall here; %s)\n",
		medRound(func(r captureRound) float64 { w, _ := r.tls.progs.perCall(r.bpfEmpty); return w }),
		med(func(r benchTLSRound) float64 { return r.progs.writes }), empty, tlsGoalAboveFloor, tp, peer)
	fmt.Printf("tls_ssl_read_programs: %.0f ns/call  (likewise per SSL read: entry + return + %.2f read(2) × (enter + exit); goal ≤ %d; %s)\n",
		medRound(func(r captureRound) float64 { _, rd := r.tls.progs.perCall(r.bpfEmpty); return rd }),
		med(func(r benchTLSRound) float64 { return r.progs.reads }), tlsGoalAboveFloor, peer)
	var names []string
	for _, r := range rounds {
		for name := range r.tls.bpf {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Printf("bpf_ns_per_call_tls_%s: %.0f ns  (no goal set; DeepFlow: no figure published)\n", name,
			med(func(r benchTLSRound) float64 { return r.bpf[name] }))
	}
	fmt.Printf("nginx_https_wrk_traced: %.0f requests/s\n", med(func(r benchTLSRound) float64 { return r.rpsTraced }))
	floorRatio := med(func(r benchTLSRound) float64 { return r.rpsEmpty / r.rpsBase })
	fmt.Printf("nginx_https_wrk_ratio: %.3f  (goal ≥ 0.90 × the floor's %.3f = %.3f; DeepFlow publishes 0.61 worst case, plain HTTP)\n",
		med(func(r benchTLSRound) float64 { return r.rpsTraced / r.rpsBase }), floorRatio, 0.9*floorRatio)
	fmt.Printf("nginx_https_wrk_ratio_over_empty_uprobes: %.3f  (median over rounds of traced / empty-uprobe requests/s, same round: the same goal, ≥ 0.90, on paired runs)\n",
		med(func(r benchTLSRound) float64 { return r.rpsTraced / r.rpsEmpty }))
	fmt.Printf("nginx_https_wrk_empty_sites: %.0f requests/s  (the empty programs where the collector puts its probes: at probe sites, no instruction single-stepped, where a function has them; no goal)\n",
		med(func(r benchTLSRound) float64 { return r.rpsEmptySites }))
	fmt.Printf("nginx_https_wrk_ratio_over_empty_sites: %.3f  (median over rounds of traced / empty-at-sites requests/s, same round: what the programs cost above their own traps; no goal)\n",
		med(func(r benchTLSRound) float64 { return r.rpsTraced / r.rpsEmptySites }))
}

// tlsGoalAboveFloor: what the collector may add per SSL call above the
// uprobe floor: the underlying read or write syscall's capture (syscall_added's
// goal, 250 ns) and the OpenSSL programs' run time (entry + return, 250 ns).
const tlsGoalAboveFloor = 500
