//go:build linux

package ebpf

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureDNS: dig against dnsmasq in two namespaces, over UDP: one c-p
// span (dig) and one s-p span (dnsmasq) per query, with the name, the type,
// the response status (NXDOMAIN is client_error) and the DNS id.
func TestCaptureDNS(t *testing.T) {
	testenv.RequireBinaries(t, "dnsmasq", "dig")
	tp, live := liveTopo(t)
	srv := exec.Command("ip", "netns", "exec", tp.ServerNS, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
		"--listen-address="+tp.ServerIP, "--bind-interfaces", "--port=53", "--address=/details.zt.test/10.203.1.10",
		"--local=/zt.test/", "--pid-file=", "--user=root")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	dig := func(name, qtype string) string {
		out, _ := exec.Command("ip", "netns", "exec", tp.ClientNS, "dig", "+short", "+tries=1", "+time=2", "@"+tp.ServerIP, name, qtype).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	var got string
	for i := 0; i < 50; i++ {
		if got = dig("details.zt.test", "A"); got == "10.203.1.10" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != "10.203.1.10" {
		t.Fatalf("dig: %q", got)
	}
	missing := fmt.Sprintf("missing%s.zt.test", nonce())
	dig(missing, "AAAA")
	spans := live.Spans()
	for _, tc := range []struct {
		name, qtype string
		status      span.ResponseStatus
	}{{"details.zt.test", "A", span.StatusOK}, {missing, "AAAA", span.StatusClientError}} {
		c, s := sidesOf(spans, func(sp span.Span) bool {
			return sp.L7Protocol == span.L7DNS && sp.RequestResource == tc.name && sp.RequestType == tc.qtype
		})
		if len(c) == 0 || len(s) == 0 {
			t.Errorf("%s %s: %d client and %d server spans", tc.name, tc.qtype, len(c), len(s))
			continue
		}
		for _, sp := range []span.Span{c[len(c)-1], s[len(s)-1]} {
			if sp.ResponseStatus != tc.status || sp.L4 != span.L4UDP || sp.StreamID == 0 || sp.EndNs < sp.StartNs {
				t.Errorf("%s %s %s: %+v", tc.name, tc.qtype, sp.TapSide, sp)
			}
		}
		if c[len(c)-1].StreamID != s[len(s)-1].StreamID {
			t.Errorf("%s: DNS ids differ: %d vs %d", tc.name, c[len(c)-1].StreamID, s[len(s)-1].StreamID)
		}
	}
}
