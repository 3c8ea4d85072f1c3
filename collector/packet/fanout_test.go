//go:build linux

package packet

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	pk "github.com/zerotrace/zerotrace/pkg/packet"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestFanoutKeepsFlowsTogether: frames of many flows are sent both ways
// through a veth (one direction sent on the capture's interface, the other
// received on it), captured by a fanout group of two rings. Every frame is
// captured exactly once, every flow — TCP over IPv4 and IPv6, VLAN-tagged,
// VXLAN with a different outer source port per direction, UDP — lands on a
// single member, and the flows are spread over both members, also those of
// one client's burst of connections to one server.
func TestFanoutKeepsFlowsTogether(t *testing.T) {
	nsPath := vethNS(t, "fan", "fa", "fb")
	txA, err := OpenRing(nsPath, "fa", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Close()
	txB, err := OpenRing(nsPath, "fb", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer txB.Close()
	group, err := OpenRingGroup(nsPath, "fa", DefaultFilter, Geometry{BlockSize: 1 << 16, Blocks: 8}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range group {
			r.Close()
		}
	}()

	// Each frame's payload names its flow, direction and number: "f012 d1 k2".
	type flowDef struct {
		name   string
		frames func(dir int, payload []byte) []byte
		oneWay bool // both directions sent on the capture's side
	}
	cli4, srv4 := netip.MustParseAddr("10.203.9.1"), netip.MustParseAddr("10.203.9.2")
	cli6, srv6 := netip.MustParseAddr("fd00:203::1"), netip.MustParseAddr("fd00:203::2")
	o1, o2 := netip.MustParseAddr("10.203.8.1"), netip.MustParseAddr("10.203.8.2")
	var flows []flowDef
	tcp := func(c, s netip.Addr, cport uint16, vlans ...uint16) func(int, []byte) []byte {
		ether := pk.EtherIPv4
		if c.Is6() {
			ether = pk.EtherIPv6
		}
		return func(dir int, payload []byte) []byte {
			if dir == 0 {
				return pk.Ether(uint16(ether), pk.IP(c, s, pk.ProtoTCP, pk.TCP(cport, 80, 1, 1, pk.FlagPSH|pk.FlagACK, payload)), vlans...)
			}
			return pk.Ether(uint16(ether), pk.IP(s, c, pk.ProtoTCP, pk.TCP(80, cport, 1, 1, pk.FlagPSH|pk.FlagACK, payload)), vlans...)
		}
	}
	for i := 0; i < 24; i++ {
		flows = append(flows, flowDef{name: fmt.Sprintf("tcp4 :%d", 40000+i), frames: tcp(cli4, srv4, uint16(40000+i))})
	}
	for i := 0; i < 8; i++ {
		flows = append(flows, flowDef{name: fmt.Sprintf("tcp6 :%d", 41000+i), frames: tcp(cli6, srv6, uint16(41000+i))})
	}
	// A burst of connections from one client to one server: Linux steps a
	// client's ephemeral port by an even 2 to 16 from one connect to the
	// next, so these ports share their low bit and their high byte. They
	// must still spread over both members (a byte fold of the hash put all
	// of them on one).
	ephemeral := map[string]bool{}
	port := uint16(0x8020)
	for _, step := range []uint16{2, 6, 10, 4, 14, 8, 16, 12, 2, 4, 6, 8} {
		port += step
		name := fmt.Sprintf("tcp4 ephemeral :%d", port)
		ephemeral[name] = true
		flows = append(flows, flowDef{name: name, frames: tcp(cli4, srv4, port)})
	}
	for i := 0; i < 4; i++ {
		// A veth does not pass tagged frames up for a VLAN it has no
		// device for: both directions are sent out of the capture's side.
		flows = append(flows, flowDef{fmt.Sprintf("vlan tcp4 :%d", 42000+i), tcp(cli4, srv4, uint16(42000+i), 10), true})
	}
	for i := 0; i < 6; i++ {
		cport := uint16(43000 + i)
		flows = append(flows, flowDef{name: fmt.Sprintf("vxlan tcp4 :%d", cport), frames: func(dir int, payload []byte) []byte {
			// Each node picks the outer source port from its own hash of
			// the inner flow: different ports per direction.
			inner := tcp(cli4, srv4, cport)(dir, payload)
			if dir == 0 {
				return pk.Ether(pk.EtherIPv4, pk.IP(o1, o2, pk.ProtoUDP, pk.UDP(50000+cport%1000, pk.PortVXLAN, pk.VXLAN(42, inner))))
			}
			return pk.Ether(pk.EtherIPv4, pk.IP(o2, o1, pk.ProtoUDP, pk.UDP(60000+cport%1000, pk.PortVXLAN, pk.VXLAN(42, inner))))
		}})
	}
	for i := 0; i < 4; i++ {
		cport := uint16(44000 + i)
		flows = append(flows, flowDef{name: fmt.Sprintf("udp :%d", cport), frames: func(dir int, payload []byte) []byte {
			if dir == 0 {
				return pk.Ether(pk.EtherIPv4, pk.IP(cli4, srv4, pk.ProtoUDP, pk.UDP(cport, 53, payload)))
			}
			return pk.Ether(pk.EtherIPv4, pk.IP(srv4, cli4, pk.ProtoUDP, pk.UDP(53, cport, payload)))
		}})
	}
	const perDir = 3
	want := len(flows) * 2 * perDir

	var mu sync.Mutex
	seen := map[string][]int{} // frame tag → members that captured it
	total := 0
	stop, stopped := make(chan struct{}), make(chan struct{})
	ps := make([]pk.Packet, len(group))
	go func() {
		defer close(stopped)
		PollGroup(group, stop, func(m int, f *Frame) {
			p := &ps[m]
			if p.Decode(f.Data) != nil {
				return
			}
			tag := string(p.Payload(f.Data))
			if !strings.HasPrefix(tag, "f") {
				return
			}
			mu.Lock()
			seen[tag] = append(seen[tag], m)
			total++
			mu.Unlock()
		})
	}()
	// The rings take frames from their open on; the readers need not run yet.
	for k := 0; k < perDir; k++ {
		for fi, fl := range flows {
			for dir, tx := range []*Ring{txA, txB} {
				if fl.oneWay {
					tx = txA
				}
				if err := tx.Send(fl.frames(dir, []byte(fmt.Sprintf("f%03d d%d k%d", fi, dir, k)))); err != nil {
					t.Fatalf("%s: send: %v", fl.name, err)
				}
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// PollGroup reads, once stopped, every frame the kernel had written
	// into each member's ring: a frame delivered to two members was
	// written into both in the same pass over the interface's sockets,
	// before the last original was read.
	close(stop)
	<-stopped

	members := map[int]int{}
	burst := map[int]int{} // members of the ephemeral-port flows
	for fi, fl := range flows {
		on := map[int]bool{}
		for dir := 0; dir < 2; dir++ {
			for k := 0; k < perDir; k++ {
				tag := fmt.Sprintf("f%03d d%d k%d", fi, dir, k)
				got := seen[tag]
				if len(got) != 1 {
					t.Errorf("%s: frame %q captured %d times (members %v), want once", fl.name, tag, len(got), got)
				}
				for _, m := range got {
					on[m] = true
				}
			}
		}
		if len(on) > 1 {
			t.Errorf("%s: frames on members %v, want one", fl.name, on)
		}
		for m := range on {
			members[m]++
			if ephemeral[fl.name] {
				burst[m]++
			}
		}
	}
	if len(members) != 2 {
		t.Errorf("flows per member %v: want flows on both members", members)
	}
	if len(burst) != 2 {
		t.Errorf("ephemeral-port flows per member %v: want flows on both members", burst)
	}
	t.Logf("%d frames captured of %d sent; flows per member %v", total, want, members)
}

// TestFanoutProgramLinks: the program assembles, fits the kernel's classic
// BPF limit, and every jump lands inside it.
func TestFanoutProgramLinks(t *testing.T) {
	prog, err := FanoutProgram()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) == 0 || len(prog) > 4096 {
		t.Fatalf("%d instructions", len(prog))
	}
	for i, in := range prog {
		switch {
		case in.Code == 0x05: // ja
			if i+1+int(in.K) >= len(prog) {
				t.Errorf("instruction %d jumps to %d of %d", i, i+1+int(in.K), len(prog))
			}
		case in.Code&0x07 == 0x05: // conditional jumps
			if i+1+int(in.Jt) >= len(prog) || i+1+int(in.Jf) >= len(prog) {
				t.Errorf("instruction %d jumps to %d/%d of %d", i, i+1+int(in.Jt), i+1+int(in.Jf), len(prog))
			}
		}
	}
	if last := prog[len(prog)-1]; last.Code&0x07 != 0x06 {
		t.Errorf("last instruction %#x is not a return", last.Code)
	}
}

// TestFanoutCapture: 32 requests from pod1 to pod2 across the VXLAN
// topology, 8 at a time on new connections, captured with two rings per
// interface. Every request gives exactly one span at each of the four
// capture points, complete (method, status, both TCP sequence numbers),
// and the pod vNICs' frames were spread over both rings.
func TestFanoutCapture(t *testing.T) {
	tp := newVXLANTopo(t)
	ns := func(n string) string { return "/run/netns/" + n }
	var mu sync.Mutex
	var spans []span.Span
	c := tp.capture(t, 2, &mu, &spans)

	dir := t.TempDir()
	const n = 32
	var urls []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%02d", i)
		os.WriteFile(dir+"/"+name, []byte("fanout "+name+"\n"), 0o644)
		urls = append(urls, "http://10.202.2.10:8080/"+name)
	}
	srv := exec.Command("ip", "netns", "exec", tp.p2, testenv.SysPython, "-m", "http.server", "8080", "--bind", "10.202.2.10", "--directory", dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for i := 0; ; i++ {
		if exec.Command("ip", "netns", "exec", tp.p1, "curl", "-sf", "--max-time", "3", "-o", "/dev/null", "http://10.202.2.10:8080/").Run() == nil {
			break
		}
		if i == 50 {
			t.Fatal("the server in pod2 never answered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if out, err := exec.Command("ip", "netns", "exec", tp.p1, "curl", "-sf", "--max-time", "5", u).CombinedOutput(); err != nil {
				t.Errorf("curl %s: %v %s", u, err, out)
			}
		}()
	}
	wg.Wait()
	c.Flush() // takes what the rings hold: every frame was written before curl got its response
	mu.Lock()
	defer mu.Unlock()
	count := map[string]map[span.TapSide]int{}
	for _, s := range spans {
		if !strings.HasPrefix(s.RequestResource, "/f") {
			continue
		}
		if s.ResponseCode != 200 || s.RequestType != "GET" || s.ReqTCPSeq == 0 || s.RespTCPSeq == 0 {
			t.Errorf("%s at %s: incomplete span %+v", s.RequestResource, s.TapSide, s)
		}
		if count[s.RequestResource] == nil {
			count[s.RequestResource] = map[span.TapSide]int{}
		}
		count[s.RequestResource][s.TapSide]++
	}
	for i := 0; i < n; i++ {
		path := fmt.Sprintf("/f%02d", i)
		for _, tap := range []span.TapSide{span.TapClientNIC, span.TapClientNode, span.TapServerNode, span.TapServerNIC} {
			if got := count[path][tap]; got != 1 {
				t.Errorf("%s: %d spans at %s, want 1", path, got, tap)
			}
		}
	}
	for _, nic := range []string{ns(tp.n1) + ":p1h", ns(tp.n2) + ":p2h"} {
		m := c.MemberPackets(nic)
		if len(m) != 2 || m[0] == 0 || m[1] == 0 {
			t.Errorf("%s: frames per ring %v, want both rings used", nic, m)
		}
		t.Logf("%s: frames per ring %v", nic, m)
	}
	if st := c.Stats()[ns(tp.n1)+":p1h"]; st.KernelDrops != 0 {
		t.Errorf("p1h: %d kernel drops", st.KernelDrops)
	}
}
