//go:build linux

package main

import (
	"strings"
	"testing"
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
