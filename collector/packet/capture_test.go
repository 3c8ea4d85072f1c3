//go:build linux

package packet

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/ebpf"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

func inodeOf(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(fi.Sys().(*syscall.Stat_t).Ino)
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// vethNS creates a network namespace (named after the test process and
// suffix, deleted at cleanup) holding the veth pair a–b, both up, and
// returns its path.
func vethNS(t *testing.T, suffix, a, b string) string {
	t.Helper()
	testenv.RequireRoot(t) // a network namespace and AF_PACKET sockets
	ns := fmt.Sprintf("zt-pkt-%d-%s", os.Getpid(), suffix)
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh(t, "ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
	sh(t, "ip", "-n", ns, "link", "set", a, "up")
	sh(t, "ip", "-n", ns, "link", "set", b, "up")
	return "/run/netns/" + ns
}

type vxlanTopo struct {
	n1, n2, p1, p2 string // namespaces: nodes and pods
}

// newVXLANTopo builds two node namespaces joined by a veth carrying a real
// VXLAN tunnel, and a pod namespace behind each node:
//
//	pod1 10.202.1.10 ─ p1h │ node1 ─ u1 10.202.0.1 ══ vxlan 42 ══ u2 10.202.0.2 ─ node2 │ p2h ─ pod2 10.202.2.10
func newVXLANTopo(t *testing.T) *vxlanTopo {
	t.Helper()
	testenv.RequireRoot(t) // network namespaces and AF_PACKET sockets
	id := fmt.Sprintf("zt-pkt-%d", os.Getpid())
	tp := &vxlanTopo{n1: id + "-n1", n2: id + "-n2", p1: id + "-p1", p2: id + "-p2"}
	t.Cleanup(func() {
		for _, ns := range []string{tp.p1, tp.p2, tp.n1, tp.n2} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{tp.n1, tp.n2, tp.p1, tp.p2} {
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Underlay.
	sh(t, "ip", "-n", tp.n1, "link", "add", "u1", "type", "veth", "peer", "name", "u2", "netns", tp.n2)
	sh(t, "ip", "-n", tp.n1, "addr", "add", "10.202.0.1/24", "dev", "u1")
	sh(t, "ip", "-n", tp.n2, "addr", "add", "10.202.0.2/24", "dev", "u2")
	sh(t, "ip", "-n", tp.n1, "link", "set", "u1", "up")
	sh(t, "ip", "-n", tp.n2, "link", "set", "u2", "up")
	// VXLAN over it.
	for _, n := range []struct{ ns, dev, local, remote, addr string }{
		{tp.n1, "u1", "10.202.0.1", "10.202.0.2", "10.202.100.1/24"},
		{tp.n2, "u2", "10.202.0.2", "10.202.0.1", "10.202.100.2/24"},
	} {
		sh(t, "ip", "-n", n.ns, "link", "add", "vx", "type", "vxlan", "id", "42", "local", n.local, "remote", n.remote, "dstport", "4789", "dev", n.dev)
		sh(t, "ip", "-n", n.ns, "addr", "add", n.addr, "dev", "vx")
		sh(t, "ip", "-n", n.ns, "link", "set", "vx", "up")
		sh(t, "ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	// Pods.
	for _, p := range []struct{ node, pod, host, podIP, gw string }{
		{tp.n1, tp.p1, "p1h", "10.202.1.10/24", "10.202.1.1"},
		{tp.n2, tp.p2, "p2h", "10.202.2.10/24", "10.202.2.1"},
	} {
		sh(t, "ip", "-n", p.node, "link", "add", p.host, "type", "veth", "peer", "name", "eth0", "netns", p.pod)
		sh(t, "ip", "-n", p.node, "addr", "add", p.gw+"/24", "dev", p.host)
		sh(t, "ip", "-n", p.node, "link", "set", p.host, "up")
		sh(t, "ip", "-n", p.pod, "addr", "add", p.podIP, "dev", "eth0")
		sh(t, "ip", "-n", p.pod, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", p.pod, "route", "add", "default", "via", p.gw)
	}
	sh(t, "ip", "-n", tp.n1, "route", "add", "10.202.2.0/24", "via", "10.202.100.2", "dev", "vx")
	sh(t, "ip", "-n", tp.n2, "route", "add", "10.202.1.0/24", "via", "10.202.100.1", "dev", "vx")
	return tp
}

// capture starts a packet capture of the topology's four capture points
// (pod1's vNIC, both underlay ends, pod2's vNIC) with fanout rings each;
// its spans are appended to *spans under mu.
func (tp *vxlanTopo) capture(t *testing.T, fanout int, mu *sync.Mutex, spans *[]span.Span) *Capture {
	t.Helper()
	ns := func(n string) string { return "/run/netns/" + n }
	c, err := Start(Options{Node: "test", Fanout: fanout, Interfaces: []Interface{
		{Netns: ns(tp.n1), Name: "p1h"}, {Netns: ns(tp.n1), Name: "u1"},
		{Netns: ns(tp.n2), Name: "u2"}, {Netns: ns(tp.n2), Name: "p2h"},
	}}, func(s *span.Span) { mu.Lock(); *spans = append(*spans, *s); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestVXLANFourPoints: curl in pod1 calls a server in pod2 across the VXLAN
// tunnel; spans come from the client pod vNIC (c), the client node NIC (c-nd,
// decapsulated), the server node NIC (s-nd) and the server pod vNIC (s), all
// with the same request and response TCP sequence numbers — equal to those of
// the eBPF spans of the same request (curl's c-p, the server's s-p).
func TestVXLANFourPoints(t *testing.T) {
	tp := newVXLANTopo(t)
	ns := func(n string) string { return "/run/netns/" + n }
	var mu sync.Mutex
	var spans []span.Span
	c := tp.capture(t, 1, &mu, &spans)
	// The eBPF capture of the same request, scoped to the two pods.
	var bspans []span.Span
	bcap, err := ebpf.Start(ebpf.Options{Node: "test", NetNS: []uint32{inodeOf(t, ns(tp.p1)), inodeOf(t, ns(tp.p2))}},
		func(s *span.Span) { mu.Lock(); bspans = append(bspans, *s); mu.Unlock() })
	if err != nil {
		t.Fatalf("eBPF capture: %v", err)
	}
	defer bcap.Close()

	dir := t.TempDir()
	os.WriteFile(dir+"/hello", []byte("hello from pod2\n"), 0o644)
	srv := exec.Command("ip", "netns", "exec", tp.p2, testenv.SysPython, "-m", "http.server", "8080", "--bind", "10.202.2.10", "--directory", dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	var out []byte
	for i := 0; i < 50; i++ {
		out, err = exec.Command("ip", "netns", "exec", tp.p1, "curl", "-s", "--max-time", "3", "http://10.202.2.10:8080/hello").CombinedOutput()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !strings.Contains(string(out), "hello from pod2") {
		t.Fatalf("curl across the tunnel: %v %s", err, out)
	}
	// Both Flushes take what their rings hold: every frame and event of
	// the exchange was written before curl received its response.
	c.Flush()
	bcap.Flush()
	mu.Lock()
	defer mu.Unlock()
	byTap := map[span.TapSide]span.Span{}
	for _, s := range spans {
		if s.RequestResource == "/hello" {
			if _, dup := byTap[s.TapSide]; dup {
				t.Errorf("two /hello spans at %s", s.TapSide)
			}
			byTap[s.TapSide] = s
		}
	}
	want := map[span.TapSide]string{span.TapClientNIC: "p1h", span.TapClientNode: "u1", span.TapServerNode: "u2", span.TapServerNIC: "p2h"}
	var ref *span.Span
	for tap, nic := range want {
		s, ok := byTap[tap]
		if !ok {
			t.Errorf("no span at %s (%s); have %v", tap, nic, keys(byTap))
			continue
		}
		if s.CaptureNIC != nic || s.SignalSource != span.SourcePacket || s.ResponseCode != 200 || s.RequestType != "GET" ||
			s.ClientIP.String() != "10.202.1.10" || s.ServerIP.String() != "10.202.2.10" || s.ServerPort != 8080 || s.Node != "test" {
			t.Errorf("%s span: %+v", tap, s)
		}
		tunneled := nic == "u1" || nic == "u2"
		if tunneled != (s.TunnelType == span.TunnelVXLAN) {
			t.Errorf("%s: tunnel %v", tap, s.TunnelType)
		}
		if tunneled && (s.TunnelOuterSrc.String() == "" || !strings.HasPrefix(s.TunnelOuterSrc.String(), "10.202.0.")) {
			t.Errorf("%s: outer %v → %v", tap, s.TunnelOuterSrc, s.TunnelOuterDst)
		}
		if ref == nil {
			ref = &s
		} else if s.ReqTCPSeq != ref.ReqTCPSeq || s.RespTCPSeq != ref.RespTCPSeq || s.ReqTCPSeq == 0 {
			t.Errorf("%s: seqs %d/%d, others %d/%d", tap, s.ReqTCPSeq, s.RespTCPSeq, ref.ReqTCPSeq, ref.RespTCPSeq)
		}
	}
	// Equal to the eBPF spans of the same request: curl's c-p and the server's s-p.
	var ebpfHello int
	for _, s := range bspans {
		if s.RequestResource != "/hello" {
			continue
		}
		ebpfHello++
		if ref != nil && (s.ReqTCPSeq != ref.ReqTCPSeq || s.RespTCPSeq != ref.RespTCPSeq) {
			t.Errorf("eBPF %s span seqs %d/%d, packet spans %d/%d", s.TapSide, s.ReqTCPSeq, s.RespTCPSeq, ref.ReqTCPSeq, ref.RespTCPSeq)
		}
	}
	if ebpfHello != 2 {
		t.Errorf("%d eBPF spans of /hello, want c-p and s-p", ebpfHello)
	}
	st := c.Stats()
	if st[ns(tp.n1)+":u1"].Packets == 0 {
		t.Errorf("stats %+v", st)
	}
}

func keys(m map[span.TapSide]span.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k.String())
	}
	return out
}

// waitFrames waits until the capture has read n frames on the interface key
// (netns:name), for frames a test sent with Ring.Send: the receiving end
// takes them from its backlog, possibly after Send returned. Bounded by
// what only a broken capture outlasts; the time it took is printed.
func waitFrames(t *testing.T, c *Capture, key string, n uint64) {
	t.Helper()
	start := time.Now()
	for c.Stats()[key].Packets < n {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: %d frames read after 10 s, %d sent", key, c.Stats()[key].Packets, n)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("%s: %d frames read after %v", key, n, time.Since(start).Round(time.Microsecond))
}
