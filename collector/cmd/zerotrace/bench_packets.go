//go:build linux

package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/zerotrace/zerotrace/collector/packet"
	pk "github.com/zerotrace/zerotrace/pkg/packet"
)

func init() {
	register(command{name: "bench packets", summary: "packet decode rate per core (64/1500-byte frames) and AF_PACKET capture throughput on a veth", run: runBenchPackets})
}

func runBenchPackets(args []string) int {
	fs := flag.NewFlagSet("bench packets", flag.ContinueOnError)
	decodeFor := fs.Duration("decode-time", 2*time.Second, "time per decode measurement")
	flood := fs.Int("flood", 200000, "frames sent through the veth (bounded)")
	fanout := fs.Int("fanout", 2, "rings of the second flood's fanout group")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cli, srv := netip.MustParseAddr("10.202.7.1"), netip.MustParseAddr("10.202.7.2")
	o1, o2 := netip.MustParseAddr("10.202.6.1"), netip.MustParseAddr("10.202.6.2")
	frameOf := func(size int, vxlan bool, sport uint16) []byte {
		f := pk.Ether(pk.EtherIPv4, pk.IP(cli, srv, pk.ProtoTCP, pk.TCP(sport, 80, 1, 1, pk.FlagACK, make([]byte, max(0, size-54)))))
		if vxlan {
			inner := pk.Ether(pk.EtherIPv4, pk.IP(cli, srv, pk.ProtoTCP, pk.TCP(40000, 80, 1, 1, pk.FlagACK, make([]byte, max(0, size-104)))))
			f = pk.Ether(pk.EtherIPv4, pk.IP(o1, o2, pk.ProtoUDP, pk.UDP(50000, pk.PortVXLAN, pk.VXLAN(1, inner))))
		}
		return f
	}
	frame := func(size int, vxlan bool) []byte { return frameOf(size, vxlan, 40000) }
	for _, c := range []struct {
		name  string
		size  int
		vxlan bool
		goal  string
	}{{"decode_64B", 64, false, "  (goal ≥ 1.5 Mpps per core)"}, {"decode_1500B", 1500, false, ""}, {"decode_1500B_vxlan", 1500, true, ""}} {
		f := frame(c.size, c.vxlan)
		var p pk.Packet
		n := 0
		start := time.Now()
		for time.Since(start) < *decodeFor {
			for i := 0; i < 10000; i++ {
				if err := p.Decode(f); err != nil {
					fmt.Fprintln(os.Stderr, "bench packets:", err)
					return 1
				}
			}
			n += 10000
		}
		fmt.Printf("%s: %.2f Mpps per core (%d-byte frames)%s\n", c.name, float64(n)/time.Since(start).Seconds()/1e6, len(f), c.goal)
	}
	if os.Geteuid() != 0 {
		fmt.Println("capture_veth: skipped (needs root)")
		return 0
	}
	// 64 flows, so that a fanout group has flows to spread.
	var frames [][]byte
	for i := 0; i < 64; i++ {
		frames = append(frames, frameOf(64, false, uint16(40000+i)))
	}
	for _, n := range []int{1, *fanout} {
		if err := benchVeth(*flood, frames, n); err != nil {
			fmt.Fprintln(os.Stderr, "bench packets:", err)
			return 1
		}
	}
	return 0
}

// benchVeth floods a veth in a private namespace with a bounded number of
// frames and reports what the AF_PACKET rings on the other end (a fanout
// group of rings, one reader each) captured.
func benchVeth(n int, frames [][]byte, rings int) error {
	ns := fmt.Sprintf("zt-pkt-%d-bench", os.Getpid())
	run := func(args ...string) error {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %v %s", args, err, out)
		}
		return nil
	}
	if err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	for _, a := range [][]string{{"ip", "-n", ns, "link", "add", "ba", "type", "veth", "peer", "name", "bb"},
		{"ip", "-n", ns, "link", "set", "ba", "up"}, {"ip", "-n", ns, "link", "set", "bb", "up"}} {
		if err := run(a...); err != nil {
			return err
		}
	}
	path := "/run/netns/" + ns
	tx, err := packet.OpenRing(path, "ba", nil)
	if err != nil {
		return err
	}
	defer tx.Close()
	group, err := packet.OpenRingGroup(path, "bb", packet.DefaultFilter, packet.DefaultGeometry, rings)
	if err != nil {
		return err
	}
	defer func() {
		for _, rx := range group {
			rx.Close()
		}
	}()
	got := make([]atomic.Int64, len(group))
	ps := make([]pk.Packet, len(group))
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		packet.PollGroup(group, stop, func(i int, f *packet.Frame) { ps[i].Decode(f.Data); got[i].Add(1) })
	}()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	sent := 0
	for sent < n && time.Now().Before(deadline) {
		if err := tx.Send(frames[sent%len(frames)]); err != nil {
			break
		}
		sent++
	}
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-stopped
	var total int64
	var drops uint32
	var per []int64
	for i, rx := range group {
		_, d, _ := rx.Stats()
		drops += d
		total += got[i].Load()
		per = append(per, got[i].Load())
	}
	fmt.Printf("capture_veth (%d ring(s), frames per ring %v): %d of %d frames captured and decoded (%.0f frames/s offered over %v), kernel drops %d  (goal 0 drops at 200k frames/s)\n",
		rings, per, total, sent, float64(sent)/elapsed.Seconds(), elapsed.Round(time.Millisecond), drops)
	return nil
}
