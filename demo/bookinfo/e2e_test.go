//go:build linux

package bookinfo

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/spangen"
)

// TestBookinfoEndToEnd runs the demo, sends 20 sequential and then 16
// concurrent requests, and checks each request's trace as the plugin binary
// returns it: exactly the 38 expected spans (24 eBPF, 14 packet) with the
// expected parent of each (the tree written down in pkg/spangen/points_test.go
// and pkg/trace/assemble_test.go). Which request a span belongs to comes
// from the services' and sidecars' logs (harness_test.go), not from the
// tracer.
func TestBookinfoEndToEnd(t *testing.T) {
	requireDemo(t)
	bin := buildBinaries(t)
	d := startDemo(t, bin, "bookinfo")

	seq, conc := d.traffic(t, 20, 16)
	o := d.observe(t)
	seedOf := map[string]uint64{}
	for _, s := range o.all {
		if m, ok := o.marker[s.SpanID]; ok && s.TapSide == span.TapClientProcess && s.ProcessName == "curl" {
			seedOf[m] = s.SpanID
		}
	}
	wantParent := map[string]string{}
	for _, p := range spangen.Points() {
		wantParent[p.Label] = p.Parent
	}
	check := func(name string, markers []string) {
		var found, correct, total int
		for _, m := range markers {
			total += 38
			seed, ok := seedOf[m]
			if !ok {
				t.Errorf("%s %s: curl's span not stored", name, m)
				continue
			}
			ids, parents, err := d.trace(seed)
			if err != nil {
				t.Errorf("%s %s: %v", name, m, err)
				continue
			}
			labels := map[string]string{} // span id → label
			seen := map[string]int{}
			var ebpf, pkt int
			for _, id := range ids {
				n, _ := strconv.ParseUint(id, 10, 64)
				s, ok := o.byID[n]
				if !ok {
					t.Errorf("%s %s: span %s of the trace is not in the store", name, m, id)
					continue
				}
				if got, ok := o.marker[n]; !ok || got != m {
					t.Errorf("%s %s: foreign span %s %s (request %q)", name, m, d.label(s), s.RequestResource, got)
					continue
				}
				labels[id] = d.label(s)
				seen[d.label(s)]++
				if s.SignalSource == span.SourceEBPF {
					ebpf++
				} else {
					pkt++
				}
			}
			for i, id := range ids {
				l, ok := labels[id]
				if !ok {
					continue
				}
				want, known := wantParent[l]
				if !known || seen[l] != 1 {
					t.Errorf("%s %s: unexpected span %q (seen %d times)", name, m, l, seen[l])
					continue
				}
				found++
				if got := labels[parents[i]]; got == want {
					correct++
				} else {
					t.Errorf("%s %s: %q has parent %q, want %q", name, m, l, got, want)
				}
			}
			if len(ids) != 38 || ebpf != 24 || pkt != 14 {
				t.Errorf("%s %s: %d spans (%d eBPF, %d packet), want 38 (24, 14)", name, m, len(ids), ebpf, pkt)
			}
		}
		fmt.Printf("bookinfo %s: completeness %d/%d (%.1f%%), correctness %d/%d (%.1f%%)\n", name, found, total,
			100*float64(found)/float64(total), correct, total, 100*float64(correct)/float64(total))
	}
	check("sequential (20 requests)", seq)
	check("concurrent (16 requests)", conc)

	// Teardown leaves nothing behind.
	d.down()
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), d.prefix+"-") {
		t.Errorf("namespaces left after down:\n%s", out)
	}
	if out, err := exec.Command("pgrep", "-f", filepath.Join(bin, "zerotrace")+" collect").CombinedOutput(); err == nil {
		t.Errorf("collectors left after down: %s", out)
	}
	// down is idempotent and works on nothing.
	d.down()
}
