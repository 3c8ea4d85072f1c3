//go:build linux

package bookinfo

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/inflight"
	"github.com/zerotrace/zerotrace/internal/testenv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// variants are the services TestVariants runs, each through `up --variant`
// (docs/demo.md): bookinfo (thread per request, a connection per call) as
// the baseline, then the ways real services are written, and a client that
// reuses one X-Request-ID, and encrypted hops: https (every app ↔ sidecar
// hop TLS, issue 25), mtls and mtls-opaque (every sidecar ↔ sidecar hop
// mutual TLS, with the sidecars' TLS library read or not, issue 26).
var variants = []string{"bookinfo", "pool", "keepalive", "go", "nodeloop", "noxrid", "reusedxrid", "timedwait", "asyncio", "completable",
	"https", "mtls", "mtls-opaque"}

// measuredCompleteness is the lowest completeness (%) measured per variant,
// sequential and concurrent, in the runs docs/demo.md lists ("Floors");
// TestVariants asserts completenessMargin points below it. A new variant
// needs its row: measure it (a few full runs) before it joins the list.
// Correctness is always asserted at 100%.
var measuredCompleteness = map[string]struct{ sequential, concurrent float64 }{
	"bookinfo":  {100, 100},
	"pool":      {100, 95.2},
	"keepalive": {100, 99.9},
	"go":        {100, 93.7},
	"nodeloop":  {100, 67.9},
	"noxrid":    {97.5, 9.0},
	// A client that sends one X-Request-ID on every request (issue 36): a
	// sidecar holding several requests with it at once cannot tell them
	// apart by it, so its calls stay separate roots.
	"reusedxrid": {100, 36.9},
	// Not yet measured in full runs here: the goals stand in (issue 24).
	"timedwait":   {100, 93},
	"asyncio":     {100, 93},
	"completable": {100, 93},
	// The TLS variants (docs/demo.md "TLS variants"). With the TLS
	// read-ahead relation (pkg/trace/readahead.go) one run (2026-12-05,
	// machine loaded) measured mtls 99.6/96.4 and https 67.1/88.9; before
	// it https 52.5/81.5 and 58.1/43.2. mtls's row holds issue 26's goal
	// (one run is too few for a floor); https's and mtls-opaque's goals
	// (95/90, 90/80) are not met, their rows sit under the runs (the
	// concurrent figures moved by 20 points between runs); mtls-opaque
	// 7.5/7.8 before L4 spans of the sidecars' ciphertext, 15.1/10.4 and
	// 22.8/9.0 with them (2026-12-05, two runs: without and with the
	// other-leg containment rule; docs/demo.md). Correctness is asserted at
	// 100% as everywhere. mtls-opaque with forwarded contexts (a sidecar's
	// read then connect, collector/ebpf forward.go), the Finished apart
	// from an L4 request and flows kept past the first tick (2026-12-05):
	// 100/98.4 and the runs in docs/demo.md; its row holds issue 26's goal.
	// Go crypto/tls's kept-alive client fixed
	// (docs/tls-go.md "When a plaintext goes out"), three runs measured https
	// 92.6/92.9 twice and 95.0/89.1 (before: 65.8/86.1); its row sits under them (ratings' node
	// s-p span still unlinked: docs/demo.md). Concurrent: reviews' calls
	// to ratings placed since a goroutine's state ends with it (2026-12-06,
	// docs/demo.md "https: reviews' calls to ratings under concurrency"):
	// 100, 100 and 99.9 in three runs (main the same hour: 94.2, 88.9, 96.0).
	// The row holds issue 25's goals (95/93, asserted 92/90), not those
	// runs: the project's CI machine, twice as fast as this one, lost 23
	// of 32 of these links where this machine lost 2 to 8, so three runs
	// here do not yet bound what it measures.
	"https":       {95, 93},
	"mtls":        {95, 90},
	"mtls-opaque": {90, 80},
}

// goalCompleteness is issue 24's goal (%) per variant, sequential and
// concurrent: 95 and 90 for the variants whose requests one thread serves
// many of or that wait with timeouts, and for every variant that meets it.
// TestVariants asserts the higher of it and the measured floor.
var goalCompleteness = map[string]struct{ sequential, concurrent float64 }{
	"bookinfo":    {95, 90},
	"pool":        {95, 90},
	"keepalive":   {95, 90},
	"go":          {95, 90},
	"nodeloop":    {95, 90},
	"timedwait":   {95, 90},
	"asyncio":     {95, 90},
	"completable": {95, 90},
}

// completenessMargin is how far (percentage points) the asserted floor sits
// below the lowest completeness measured: the spread of repeated runs on a
// busy 2-core machine, not a fraction of the figure.
const completenessMargin = 3

const (
	sequentialRequests = 20
	concurrentRequests = 32
	// minOverlap is how many curl spans of the 32 concurrent requests must
	// be in flight at once (TestVariants, TestOTLPIngest): 17–32 in the
	// variants' runs recorded in docs/demo.md, 29 in the otel variant's;
	// the floor sits 5 under the lowest.
	minOverlap = 12
)

// TestVariants is the causality matrix of issue 12. For every variant it
// brings the demo up, sends 20 sequential and then 32 concurrent requests
// (checking from the stored curl spans that at least minOverlap were in
// flight at once; while a batch falls short, another 32 under new markers,
// at most overlapRounds batches, each judged like the first: traffic),
// waits for the shards to settle, and asks the plugin binary, over
// Grafana's plugin protocol, for each request's trace twice: from its curl
// span and from a random span of the request (seeded; the seed is printed,
// ZT_VARIANTS_SEED repeats it). Which request and observation point a span
// belongs to comes from the services' and sidecars' ground-truth logs
// (harness_test.go), never from the tracer. It prints one line per variant
// and mode:
//
//	variant <name> <sequential|concurrent|concurrent batch N>: completeness <found>/<expected> (<pct>%), correctness <clean>/<traces> (<pct>%), overlap <n>, stored <spans>/<38×requests> (per request <min>–<max>)
//
// summed over both seeds of every request: expected is 38 per trace asked
// for (38 × 2 × requests: a span the capture lost is a span missing from
// the trace), found the spans of the request in the trace, each at one of
// the 38 points; a trace is correct (clean) when every span in it belongs
// to its request, at its own point, under its expected parent (judge:
// spangen.Points, over the gaps of spans the trace lacks); overlap is the
// maximum number of the mode's curl spans in flight at one time, and stored
// the spans of the mode's requests in the store. Any unclean trace is an
// error; completeness must reach measuredCompleteness − completenessMargin.
// `-run TestVariants/pool` runs one variant (`-run 'TestVariants/(https|mtls)$'`
// the TLS variants but mtls-opaque: the pattern matches name prefixes).
func TestVariants(t *testing.T) {
	requireDemo(t, "go")
	if out, err := exec.Command("python3", "-c", "import flask, requests").CombinedOutput(); err != nil {
		testenv.Skip(t, "the keepalive variant needs Python's flask and requests (bash .ci/install): %s", out)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ZT_VARIANTS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("ZT_VARIANTS_SEED: %v", err)
		}
	}
	fmt.Printf("variants: seed %d (ZT_VARIANTS_SEED=%d repeats the choice of random spans)\n", seed, seed)
	bin := buildBinaries(t)
	for i, v := range variants {
		t.Run(v, func(t *testing.T) { runVariant(t, bin, v, rand.New(rand.NewPCG(seed, uint64(i)))) })
	}
}

func runVariant(t *testing.T, bin, variant string, rng *rand.Rand) {
	measured, ok := measuredCompleteness[variant]
	if !ok {
		t.Fatalf("variant %s has no measured completeness (measuredCompleteness)", variant)
	}
	d := startDemo(t, bin, variant)
	tree := expectedTree()
	seq, conc, o := d.traffic(t, sequentialRequests, concurrentRequests, minOverlap)
	spansOf := map[string][]uint64{} // marker → its stored spans, by id
	curlOf := map[string]span.Span{}
	for _, s := range o.all {
		m, ok := o.marker[s.SpanID]
		if !ok {
			continue
		}
		spansOf[m] = append(spansOf[m], s.SpanID)
		if s.TapSide == span.TapClientProcess && s.ProcessName == "curl" {
			curlOf[m] = s
		}
	}
	for _, ids := range spansOf {
		slices.Sort(ids)
	}
	var reused, most int
	for _, reqs := range o.truth {
		if len(reqs) > 1 {
			reused++
		}
		most = max(most, len(reqs))
	}
	t.Logf("%s: %d connections logged, %d carried more than one request (at most %d); %d spans stored, %d on no logged connection, %d not attributable (ambiguous position)",
		variant, len(o.truth), reused, most, len(o.all), o.unknownConn, len(o.unattributed))
	for _, s := range o.unattributed {
		t.Logf("  not attributable: %s %s:%d→%s:%d [%d,%d]", d.label(s), s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort, s.StartNs, s.EndNs)
	}

	mode := func(name string, markers []string, floor float64) {
		var curls []span.Span
		var perRequest []int
		for _, m := range markers {
			if c, ok := curlOf[m]; ok {
				curls = append(curls, c)
			} else {
				t.Errorf("%s %s: curl's span not stored", name, m)
			}
			perRequest = append(perRequest, len(spansOf[m]))
		}
		overlap := inflight.Max(curls)
		slices.Sort(perRequest)
		t.Logf("%s %s: spans per request in the store: min %d, median %d, max %d", variant, name,
			perRequest[0], perRequest[len(perRequest)/2], perRequest[len(perRequest)-1])
		logMissing(t, d, o, tree, spansOf, markers)

		// by seed: 0 = curl's span, 1 = a random span of the request
		var found, expected, clean, traces, foreignSpans, misplaced, largest [2]int
		missing := map[string]int{} // observation point → traces of its request that lacked it
		incomplete := 0
		for _, m := range markers {
			own := spansOf[m]
			var seeds [2]uint64
			seeds[0] = curlOf[m].SpanID
			if len(own) > 0 {
				seeds[1] = own[rng.IntN(len(own))]
			} else {
				t.Errorf("%s %s: no stored span of the request", name, m)
			}
			for k, seed := range seeds {
				expected[k] += pointsPerRequest
				traces[k]++
				if seed == 0 {
					continue // nothing to start from: an empty trace
				}
				tr, err := d.trace(seed)
				ids, parents := tr.ids, tr.parents
				if err != nil {
					t.Errorf("%s %s: trace from %d: %v", name, m, seed, err)
					continue
				}
				spans := make([]traceSpan, len(ids))
				inTrace := map[string]bool{}
				for i, id := range ids {
					n := spanID(id)
					s, stored := o.byID[n]
					spans[i] = traceSpan{id: id, parent: parents[i], stored: stored, label: d.label(s), marker: o.marker[n]}
					if stored && o.marker[n] == m {
						inTrace[d.label(s)] = true
					}
				}
				v := judge(tree, m, spans)
				found[k] += v.found
				var lacks []string
				for l := range tree {
					if !inTrace[l] {
						missing[l]++
						lacks = append(lacks, l)
					}
				}
				if len(lacks) > 0 && incomplete < 5 {
					// Which part of the request a trace lacks names the link
					// that was not made, or the span the capture lost
					// (logged for the first five traces).
					incomplete++
					slices.Sort(lacks)
					t.Logf("%s %s: trace of %s from %s lacks %d of %d spans (%d stored): %s", variant, name, m, [2]string{"curl's span", "a random span"}[k],
						len(lacks), pointsPerRequest, len(own), strings.Join(lacks, "; "))
				}
				if v.clean() {
					clean[k]++
					continue
				}
				from := "curl's span"
				if k == 1 {
					from = "span " + d.label(o.byID[seed])
				}
				foreignSpans[k] += len(v.foreign)
				misplaced[k] += len(v.misplace)
				largest[k] = max(largest[k], len(ids))
				t.Errorf("variant %s %s %s: trace from %s holds %d spans, %d foreign: %s; %d misplaced: %s", variant, name, m, from,
					len(ids), len(v.foreign), firstFive(v.foreign), len(v.misplace), firstFive(v.misplace))
			}
		}
		stored := 0
		for _, n := range perRequest {
			stored += n
		}
		f, e, c, n := found[0]+found[1], expected[0]+expected[1], clean[0]+clean[1], traces[0]+traces[1]
		fmt.Printf("variant %s %s: completeness %d/%d (%.1f%%), correctness %d/%d (%.1f%%), overlap %d, stored %d/%d (per request %d–%d)\n",
			variant, name, f, e, pct(f, e), c, n, pct(c, n), overlap, stored, pointsPerRequest*len(markers), perRequest[0], perRequest[len(perRequest)-1])
		for k, from := range []string{"curl's span", "a random span"} {
			t.Logf("%s %s from %s: completeness %d/%d (%.1f%%), correctness %d/%d (%.1f%%); foreign spans %d, misplaced spans %d, largest unclean trace %d",
				variant, name, from, found[k], expected[k], pct(found[k], expected[k]), clean[k], traces[k], pct(clean[k], traces[k]),
				foreignSpans[k], misplaced[k], largest[k])
		}
		if len(missing) > 0 {
			lines := make([]string, 0, len(missing))
			for l, n := range missing {
				lines = append(lines, fmt.Sprintf("%s ×%d", l, n))
			}
			sort.Strings(lines)
			t.Logf("%s %s: spans missing from their request's traces: %s", variant, name, strings.Join(lines, "; "))
		}
		if pct(f, e) < floor {
			t.Errorf("variant %s %s: completeness %.1f%%, want at least %.1f%%", variant, name, pct(f, e), floor)
		}
	}
	goal := goalCompleteness[variant]
	mode("sequential", seq, max(goal.sequential, measured.sequential-completenessMargin))
	for i, batch := range conc { // traffic asserts the overlap floor of one batch
		mode(concurrentName(i), batch, max(goal.concurrent, measured.concurrent-completenessMargin))
	}
}

// logMissing names the observation points of the request path that the
// store lacks for a request (capture losses: each is a span missing from
// every trace of its request), for the first five requests that lack any.
func logMissing(t *testing.T, d *demo, o observed, tree map[string]string, spansOf map[string][]uint64, markers []string) {
	logged := 0
	for _, m := range markers {
		have := map[string]int{}
		for _, id := range spansOf[m] {
			have[d.label(o.byID[id])]++
		}
		var missing []string
		for l := range tree {
			if have[l] == 0 {
				missing = append(missing, l)
			}
		}
		if len(missing) == 0 || logged == 5 {
			continue
		}
		slices.Sort(missing)
		t.Logf("  %s: %d spans stored, missing %s", m, len(spansOf[m]), strings.Join(missing, "; "))
		logged++
	}
}

// firstFive joins up to five of what a trace got wrong, and counts the rest.
func firstFive(what []string) string {
	if len(what) > 5 {
		return fmt.Sprintf("%s and %d more", strings.Join(what[:5], ", "), len(what)-5)
	}
	return strings.Join(what, ", ")
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
