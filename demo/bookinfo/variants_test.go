//go:build linux

package bookinfo

import (
	"cmp"
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

	"github.com/zerotrace/zerotrace/internal/testenv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// variants are the services TestVariants runs, each through `up --variant`
// (docs/demo.md): bookinfo (thread per request, a connection per call) as
// the baseline, then the ways real services are written.
var variants = []string{"bookinfo", "pool", "keepalive", "go", "nodeloop", "noxrid", "timedwait", "asyncio", "completable"}

// minCompleteness is the completeness (%) TestVariants asserts per variant,
// sequential and concurrent. Correctness is always asserted at 100%.
// Issue 12's goals are 95 sequential and 90 concurrent for pool, keepalive
// and go, asserted. Where there is no goal the floor asserted is below what
// was measured (docs/demo.md): nodeloop concurrent 70–80%, noxrid
// concurrent 10–13%.
var minCompleteness = map[string]struct{ sequential, concurrent float64 }{
	"bookinfo":    {100, 100},
	"pool":        {95, 90},
	"keepalive":   {95, 90},
	"go":          {95, 90},
	"nodeloop":    {95, 50},
	"noxrid":      {95, 3},
	"timedwait":   {95, 90},
	"asyncio":     {95, 90},
	"completable": {95, 90},
}

const (
	sequentialRequests = 20
	concurrentRequests = 32
	minOverlap         = 8 // in-flight curl spans the concurrent requests must reach
)

// TestVariants is the causality matrix of issue 12. For every variant it
// brings the demo up, sends 20 sequential and then 32 concurrent requests
// (checking from the stored curl spans that at least 8 were in flight at
// once), waits for the shards to settle, and asks the plugin binary, over
// Grafana's plugin protocol, for each request's trace twice: from its curl
// span and from a random span of the request (seeded; the seed is printed,
// ZT_VARIANTS_SEED repeats it). Which request a span belongs to comes from
// the services' and sidecars' ground-truth logs (harness_test.go), never
// from the tracer. It prints one line per variant and mode:
//
//	variant <name> <sequential|concurrent>: completeness <found>/<expected> (<pct>%), correctness <clean>/<traces> (<pct>%), overlap <n>
//
// summed over both seeds of every request: expected is the number of stored
// spans that belong to the request, found the number of those in the
// assembled trace (whatever their parent), a trace is clean when every one
// of its spans belongs to its request, and overlap is the maximum number of
// the mode's curl spans in flight at one time. Any span of another request
// (or of no known request) in a trace is an error; completeness must reach
// minCompleteness. `-run TestVariants/pool` runs one variant.
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
	d := startDemo(t, bin, variant)
	seq, conc := d.traffic(t, sequentialRequests, concurrentRequests)
	o := d.observe(t)
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

	mode := func(name string, markers []string, min float64) {
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
		overlap := maxInFlight(curls)
		slices.Sort(perRequest)
		t.Logf("%s %s: spans per request in the store: min %d, median %d, max %d", variant, name,
			perRequest[0], perRequest[len(perRequest)/2], perRequest[len(perRequest)-1])
		logMissing(t, d, o, spansOf, markers)

		// by seed: 0 = curl's span, 1 = a random span of the request
		var found, expected, clean, traces, foreignSpans, largest [2]int
		missing := map[string]int{} // observation point → spans of a request its trace lacked
		incomplete := 0
		for _, m := range markers {
			own := spansOf[m]
			if len(own) == 0 {
				t.Errorf("%s %s: no stored span of the request", name, m)
				continue
			}
			seeds := [2]uint64{curlOf[m].SpanID, own[rng.IntN(len(own))]}
			for k, seed := range seeds {
				expected[k] += len(own)
				traces[k]++
				if seed == 0 {
					continue // no curl span: counted as an empty trace
				}
				ids, _, _, err := d.trace(seed)
				if err != nil {
					t.Errorf("%s %s: trace from %d: %v", name, m, seed, err)
					continue
				}
				var foreign []string
				inTrace := map[uint64]bool{}
				for _, id := range ids {
					n, _ := strconv.ParseUint(id, 10, 64)
					inTrace[n] = true
				}
				var lacks []string
				for _, id := range own {
					if !inTrace[id] {
						missing[d.label(o.byID[id])]++
						lacks = append(lacks, d.label(o.byID[id]))
					}
				}
				if len(lacks) > 0 && incomplete < 5 {
					// Which part of the request a trace lacks names the link
					// that was not made (logged for the first five traces).
					incomplete++
					slices.Sort(lacks)
					t.Logf("%s %s: trace of %s from %s lacks %d of %d spans: %s", variant, name, m, [2]string{"curl's span", "a random span"}[k],
						len(lacks), len(own), strings.Join(lacks, "; "))
				}
				for _, id := range ids {
					n, _ := strconv.ParseUint(id, 10, 64)
					s, stored := o.byID[n]
					got, known := o.marker[n]
					switch {
					case known && got == m:
						found[k]++
					case !stored:
						foreign = append(foreign, fmt.Sprintf("%s (not in the store)", id))
					case !known:
						foreign = append(foreign, fmt.Sprintf("%s %s (no ground truth)", id, d.label(s)))
					default:
						foreign = append(foreign, fmt.Sprintf("%s %s (request %s)", id, d.label(s), got))
					}
				}
				if len(foreign) == 0 {
					clean[k]++
					continue
				}
				from := "curl's span"
				if k == 1 {
					from = "span " + d.label(o.byID[seed])
				}
				nForeign, more := len(foreign), ""
				foreignSpans[k] += nForeign
				largest[k] = max(largest[k], len(ids))
				if len(foreign) > 5 {
					more, foreign = fmt.Sprintf(" and %d more", len(foreign)-5), foreign[:5]
				}
				t.Errorf("variant %s %s %s: trace from %s holds %d spans, %d foreign: %s%s", variant, name, m, from,
					len(ids), nForeign, strings.Join(foreign, ", "), more)
			}
		}
		f, e, c, n := found[0]+found[1], expected[0]+expected[1], clean[0]+clean[1], traces[0]+traces[1]
		fmt.Printf("variant %s %s: completeness %d/%d (%.1f%%), correctness %d/%d (%.1f%%), overlap %d\n",
			variant, name, f, e, pct(f, e), c, n, pct(c, n), overlap)
		for k, from := range []string{"curl's span", "a random span"} {
			t.Logf("%s %s from %s: completeness %d/%d (%.1f%%), correctness %d/%d (%.1f%%); foreign spans %d, largest unclean trace %d",
				variant, name, from, found[k], expected[k], pct(found[k], expected[k]), clean[k], traces[k], pct(clean[k], traces[k]),
				foreignSpans[k], largest[k])
		}
		if len(missing) > 0 {
			lines := make([]string, 0, len(missing))
			for l, n := range missing {
				lines = append(lines, fmt.Sprintf("%s ×%d", l, n))
			}
			sort.Strings(lines)
			t.Logf("%s %s: spans missing from their request's traces: %s", variant, name, strings.Join(lines, "; "))
		}
		if pct(f, e) < min {
			t.Errorf("variant %s %s: completeness %.1f%%, want at least %.1f%%", variant, name, pct(f, e), min)
		}
		if name == "concurrent" && overlap < minOverlap {
			t.Errorf("variant %s concurrent: at most %d requests in flight at once, want at least %d", variant, overlap, minOverlap)
		}
	}
	mode("sequential", seq, minCompleteness[variant].sequential)
	mode("concurrent", conc, minCompleteness[variant].concurrent)
}

// logMissing names the observation points missing from requests that have
// fewer stored spans than the fullest request of the mode (capture losses,
// for the record: they lower expected, not completeness).
func logMissing(t *testing.T, d *demo, o observed, spansOf map[string][]uint64, markers []string) {
	points := func(m string) map[string]int {
		c := map[string]int{}
		for _, id := range spansOf[m] {
			c[d.label(o.byID[id])]++
		}
		return c
	}
	fullest := ""
	for _, m := range markers {
		if len(spansOf[m]) > len(spansOf[fullest]) {
			fullest = m
		}
	}
	full, logged := points(fullest), 0
	for _, m := range markers {
		if len(spansOf[m]) == len(spansOf[fullest]) || logged == 5 {
			continue
		}
		have := points(m)
		var missing []string
		for l, n := range full {
			for range n - have[l] {
				missing = append(missing, l)
			}
		}
		slices.Sort(missing)
		t.Logf("  %s: %d spans stored, missing %s", m, len(spansOf[m]), strings.Join(missing, "; "))
		logged++
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// maxInFlight is the largest number of spans whose [start, end] intervals
// overlap at one instant.
func maxInFlight(spans []span.Span) int {
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.StartNs, 1}, edge{s.EndNs, -1})
	}
	// at equal times an end comes first: touching intervals do not overlap
	slices.SortFunc(edges, func(a, b edge) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.delta, b.delta)) })
	n, most := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}
