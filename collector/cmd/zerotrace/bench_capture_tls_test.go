//go:build linux

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// The paired TLS figures are medians of each round's differences (ratios),
// not differences of medians: rounds whose floor moves tell them apart.
func TestPrintTLSPaired(t *testing.T) {
	if !haveCollect() {
		t.Fatal("this binary has no collect command")
	}
	empty := []float64{1000, 2000, 3000, 4000, 5000}
	traced := []float64{1500, 10000, 3100, 4100, 5100} // above the floor: 500, 8000, 100, 100, 100
	rounds := make([]captureRound, 5)
	for i := range rounds {
		rounds[i].tls = benchTLSRound{writeBase: 100, readBase: 100, writeEmpty: empty[i], readEmpty: empty[i] + 1,
			writeTraced: traced[i], readTraced: traced[i] + 3, rpsBase: 1000, rpsEmpty: empty[i], rpsTraced: traced[i]}
	}
	out := captureStdout(t, func() { printTLSCapture(rounds) })
	for _, want := range []string{
		"tls_ssl_write_above_floor: 100 ns/call", // the medians' difference would be 4100 − 3000
		"tls_ssl_read_above_floor: 102 ns/call",
		"nginx_https_wrk_ratio_over_empty_uprobes: 1.033", // 3100/3000; the medians' ratio 4100/3000
	} {
		if !strings.Contains(out, want+"  (") {
			t.Errorf("printTLSCapture printed\n%s\nwant a line %q", out, want)
		}
	}
}

// The programs' figure sums each program's mean run (entries of both
// names weighted by their runs) less the empty program, the syscall
// programs once per syscall the call made; the printed figure is the
// median of the rounds' sums.
func TestTLSPrograms(t *testing.T) {
	snap := func(runs map[string][2]uint64) map[string]*ebpf.ProgramStats {
		m := map[string]*ebpf.ProgramStats{}
		for name, v := range runs {
			m[name] = &ebpf.ProgramStats{Runtime: time.Duration(v[0]), RunCount: v[1]}
		}
		return m
	}
	a := snap(map[string][2]uint64{"ossl_write_ex": {1000, 10}, "ossl_write": {0, 0}, "ossl_write_exw": {0, 0}, "ossl_read_ex": {0, 0},
		"ossl_ret_ex": {0, 0}, "ossl_ret": {500, 1}, "enter_write": {0, 0}, "exit_write": {0, 0},
		"enter_read": {0, 0}, "exit_read": {0, 0}, "exit_sendto": {0, 0}})
	b := snap(map[string][2]uint64{
		"ossl_write_ex":  {1000 + 100*200, 10 + 100}, // 200 ns per run
		"ossl_write":     {100 * 400, 100},           // 400
		"ossl_write_exw": {100 * 600, 100},           // 600 (a library whose small writes' count is their length): the entries' mean is 400
		"ossl_read_ex":   {200 * 150, 200},
		"ossl_ret_ex":    {300 * 800, 300},
		"ossl_ret":       {500 + 100*400, 1 + 100}, // the returns' mean: (240000 + 40000) / 400 = 700
		"enter_write":    {200 * 100, 200},
		"exit_write":     {200 * 120, 200},
		"enter_read":     {450 * 90, 450},
		"exit_read":      {450 * 70, 450},
		"exit_sendto":    {7 * 1000, 7}, // not under the calls
	})
	p, err := tlsProgramsOf(a, b, 1, 2.25)
	if err != nil {
		t.Fatal(err)
	}
	want := tlsPrograms{writeEntry: 400, readEntry: 150, ret: 700, enterWrite: 100, exitWrite: 120, enterRead: 90, exitRead: 70, writes: 1, reads: 2.25}
	if p != want {
		t.Fatalf("tlsProgramsOf = %+v, want %+v", p, want)
	}
	// Less an empty program's 50 per run: write (400-50) + (700-50) + 1×(50+70) = 1120;
	// read (150-50) + (700-50) + 2.25×(40+20) = 885.
	if w, r := p.perCall(50); w != 1120 || r != 885 {
		t.Errorf("perCall(50) = %v, %v; want 1120, 885", w, r)
	}
	delete(b, "exit_read")
	if _, err := tlsProgramsOf(a, b, 1, 2.25); err == nil || !strings.Contains(err.Error(), "exit_read did not run") {
		t.Errorf("tlsProgramsOf without exit_read: err %v, want exit_read did not run", err)
	}

	// Each round's sum with its own empty program; the median of the sums.
	rounds := make([]captureRound, 5)
	for i, e := range []float64{50, 10, 90, 50, 50} {
		q := want
		q.ret += float64(i) * 1000 // sums: write 1120, 2280, 2960, 4120, 5120 (from the medians of the parts: 3120); read 885, 2145, 2625, 3885, 4885
		rounds[i] = captureRound{bpfEmpty: e, loopBase: 1000, loopEmpty: 1300,
			tls: benchTLSRound{writeBase: 1, readBase: 1, rpsBase: 1, rpsEmpty: 1, progs: q}}
	}
	out := captureStdout(t, func() { printTLSCapture(rounds) })
	for _, want := range []string{
		"tls_ssl_write_programs: 2960 ns/call  (median over rounds of the programs' run time per SSL write: entry + return + 1.00 write(2) × (enter + exit), each run less the empty program's 50;",
		"not in it: the syscall tracepoints' own cost, 300 ns per syscall here;",
		"tls_ssl_read_programs: 2625 ns/call  (likewise per SSL read: entry + return + 2.25 read(2) × (enter + exit);",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printTLSCapture printed\n%s\nwant %q", out, want)
		}
	}
}
