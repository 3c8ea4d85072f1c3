//go:build linux

package packet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/pkg/l7"
	pk "github.com/zerotrace/zerotrace/pkg/packet"
	"github.com/zerotrace/zerotrace/pkg/redact"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Role is what an interface is, for the tap side of its spans.
type Role string

const (
	RoleAuto  Role = ""      // infer: tunneled traffic → node NIC, else the pod's NIC, lo → local
	RolePod   Role = "pod"   // a pod's vNIC (either end of its veth): c or s
	RoleNode  Role = "node"  // a node NIC (underlay): c-nd or s-nd
	RoleLocal Role = "local" // both ends on this host
	RoleRest  Role = "rest"
)

// Interface is one capture point.
type Interface struct {
	Netns string // path of the network namespace ("" = the collector's)
	Name  string
	Role  Role
}

// Options configure a Capture.
type Options struct {
	Node       string
	Interfaces []Interface
	Filter     string // tcpdump expression; "" = DefaultFilter
	Timeout    time.Duration
	Logger     *slog.Logger
	Ring       Geometry // zero: DefaultGeometry
	// Fanout is the number of rings (and reader goroutines) per
	// interface, joined in a PACKET_FANOUT group (fanout.go); 0 or 1: one.
	Fanout int
	// Redact removes secrets from URLs (default: redact.Default()).
	Redact *redact.Redactor
}

// IfaceStats are the counters of one interface.
type IfaceStats struct {
	Packets, Bytes, KernelDrops, Malformed uint64
}

// Capture runs one ring per interface, or a fanout group of rings.
type Capture struct {
	opt   Options
	emit  func(*span.Span)
	ids   *span.IDGenerator
	rings []*ringState
	final map[string]IfaceStats // the counters when Close stopped the rings
	done  chan struct{}
	wg    sync.WaitGroup
}

type ringState struct {
	c     *Capture
	ring  *Ring
	iface Interface
	netns uint64
	mu    sync.Mutex
	flows map[flowKey]*flow
	tls   map[flowKey]*tlsFlow // tls.go
	stats IfaceStats

	p       pk.Packet     // the frame being decoded
	onFrame func(*Frame)  // rs.frame, made once
	drain   drainWaits    // Flush's waiters (drain.go)
	stopped chan struct{} // closed when run returns
}

type flowKey struct{ a, b netip.AddrPort }

type flow struct {
	conn        *session.Conn
	client      netip.AddrPort
	reqOutgoing bool
	tunnel      span.TunnelType
	outerSrc    netip.Addr
	outerDst    netip.Addr
	next        [2]uint32
	seen        [2]bool
	last        int64
}

// Start opens the rings and starts capturing; emit receives every span.
func Start(opt Options, emit func(*span.Span)) (*Capture, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Ring == (Geometry{}) {
		opt.Ring = DefaultGeometry
	}
	if err := opt.Ring.Validate(); err != nil {
		return nil, fmt.Errorf("packet ring: %w", err)
	}
	prog, err := CompileFilter(opt.Filter)
	if err != nil {
		return nil, err
	}
	c := &Capture{opt: opt, emit: emit, ids: span.NewIDGenerator(opt.Node+"/packet", time.Now()), done: make(chan struct{})}
	if opt.Fanout < 0 || opt.Fanout > MaxFanout {
		return nil, fmt.Errorf("packet fanout %d: want 1 to %d rings per interface", opt.Fanout, MaxFanout)
	}
	for _, ifc := range opt.Interfaces {
		rings, err := OpenRingGroup(ifc.Netns, ifc.Name, prog, opt.Ring, opt.Fanout)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("capturing on %s (netns %q): %w", ifc.Name, ifc.Netns, err)
		}
		var netns uint64
		if ifc.Netns != "" {
			if fi, err := os.Stat(ifc.Netns); err == nil {
				netns = fi.Sys().(*syscall.Stat_t).Ino
			}
		}
		// Each member follows its own flows: the group's program sends
		// both directions of a flow to the same member.
		for _, r := range rings {
			rs := &ringState{c: c, ring: r, iface: ifc, netns: netns, flows: map[flowKey]*flow{}, stopped: make(chan struct{})}
			rs.onFrame = rs.frame
			c.rings = append(c.rings, rs)
		}
	}
	for _, rs := range c.rings {
		c.wg.Add(1)
		go rs.run()
	}
	return c, nil
}

func (rs *ringState) run() {
	defer rs.c.wg.Done()
	defer close(rs.stopped)
	tick := time.Now()
	for {
		select {
		case <-rs.c.done:
			return
		default:
		}
		_, err := rs.ring.Poll(100*time.Millisecond, rs.onFrame)
		if rs.drain.n.Load() != 0 {
			rs.release()
		}
		if err != nil {
			rs.c.opt.Logger.Warn("packet capture", "iface", rs.iface.Name, "err", err)
			time.Sleep(100 * time.Millisecond)
		}
		if time.Since(tick) > 500*time.Millisecond {
			tick = time.Now()
			rs.tick(tick.UnixNano())
		}
	}
}

// frame takes one frame of the ring.
func (rs *ringState) frame(f *Frame) {
	rs.mu.Lock()
	rs.stats.Packets++
	rs.stats.Bytes += uint64(f.Len)
	if err := rs.p.Decode(f.Data); err != nil {
		if !errors.Is(err, pk.ErrUnsupported) {
			rs.stats.Malformed++
		}
	} else {
		rs.handle(&rs.p, f)
	}
	rs.mu.Unlock()
}

func (rs *ringState) tick(now int64) {
	rs.pollDrops()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, fl := range rs.flows {
		fl.conn.Tick(now)
		if now-fl.last > int64(3*rs.c.opt.Timeout) {
			fl.conn.Close(now)
			delete(rs.flows, k)
		}
	}
	rs.tickTLS(now)
}

func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

func (rs *ringState) handle(p *pk.Packet, f *Frame) {
	udp := p.Proto == pk.ProtoUDP
	src, dst := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
	k := flowKey{src, dst}
	if dst.Addr().Less(src.Addr()) || (dst.Addr() == src.Addr() && dst.Port() < src.Port()) {
		k = flowKey{dst, src}
	}
	payload := p.Payload(f.Data)
	fl := rs.flows[k]
	if fl == nil && rs.handleTLS(p, f, k, src, dst, payload) {
		return
	}
	if fl == nil {
		if len(payload) == 0 {
			return
		}
		var m l7.Message
		pr := l7.Detect(payload)
		if udp {
			pr = l7.DetectUDP(payload)
		}
		if pr == nil {
			return // mid-stream: wait for a message start
		}
		if err := pr.Parse(payload, &m); err != nil && err != l7.ErrIncomplete {
			return
		}
		client, server := src, dst
		if m.Response {
			client, server = dst, src
		}
		fl = &flow{client: client, reqOutgoing: f.Outgoing}
		if m.Response {
			fl.reqOutgoing = !f.Outgoing
		}
		l4 := span.L4TCP
		if udp {
			l4 = span.L4UDP
		}
		fl.conn = session.NewConn(session.ConnMeta{Node: rs.c.opt.Node, Source: span.SourcePacket, NetNS: rs.netns,
			L4: l4, LocalIP: client.Addr(), LocalPort: client.Port(), RemoteIP: server.Addr(), RemotePort: server.Port()},
			session.Config{Timeout: rs.c.opt.Timeout, IDs: rs.c.ids, UDP: udp, Redact: rs.c.opt.Redact}, func(s *span.Span) { rs.finish(fl, s) })
		fl.conn.SetRole(session.RoleClient)
		rs.flows[k] = fl
	}
	fl.last = f.TimeNs
	fl.tunnel, fl.outerSrc, fl.outerDst = p.Tunnel, p.OuterSrc, p.OuterDst
	d := session.Egress
	if src != fl.client {
		d = session.Ingress
	}
	if udp {
		if len(payload) > 0 {
			fl.conn.Feed(session.Chunk{Dir: d, StartNs: f.TimeNs, EndNs: f.TimeNs, Data: payload, Len: len(payload)})
		}
		return
	}
	if len(payload) > 0 {
		if fl.seen[d] && seqBefore(p.Seq, fl.next[d]) {
			return // retransmission
		}
		fl.seen[d], fl.next[d] = true, p.Seq+uint32(len(payload))
		fl.conn.Feed(session.Chunk{Dir: d, StartNs: f.TimeNs, EndNs: f.TimeNs, TCPSeq: p.Seq, Data: payload, Len: len(payload)})
	}
	if p.Flags&(pk.FlagFIN|pk.FlagRST) != 0 && d == session.Ingress {
		// The server closed (or reset): what was pending is complete.
		fl.conn.Close(f.TimeNs)
		delete(rs.flows, k)
	}
}

// finish sets what only the capture point knows: tap side, NIC, tunnel.
func (rs *ringState) finish(fl *flow, s *span.Span) {
	s.CaptureNIC = rs.iface.Name
	s.TunnelType, s.TunnelOuterSrc, s.TunnelOuterDst = fl.tunnel, fl.outerSrc, fl.outerDst
	role := rs.iface.Role
	if role == RoleAuto {
		switch {
		case rs.iface.Name == "lo":
			role = RoleLocal
		case fl.tunnel != span.TunnelNone:
			role = RoleNode
		default:
			role = RolePod
		}
	}
	switch role {
	case RoleNode:
		s.TapSide = span.TapServerNode
		if fl.reqOutgoing {
			s.TapSide = span.TapClientNode
		}
	case RolePod:
		// On the host side of a pod's veth a request received comes from
		// the pod (the client); one sent goes to the pod (the server).
		s.TapSide = span.TapClientNIC
		if fl.reqOutgoing {
			s.TapSide = span.TapServerNIC
		}
	case RoleLocal:
		s.TapSide = span.TapLocal
	default:
		s.TapSide = span.TapRest
	}
	rs.c.emit(s)
}

// MaxFanout bounds Options.Fanout.
const MaxFanout = 64

// Stats returns the counters per interface, summed over its fanout members
// (kernel drops read now; after Close, the counters at Close).
func (c *Capture) Stats() map[string]IfaceStats {
	if c.final != nil {
		return c.final
	}
	out := map[string]IfaceStats{}
	for _, rs := range c.rings {
		rs.pollDrops()
		rs.mu.Lock()
		k := rs.key()
		t := out[k]
		t.Packets += rs.stats.Packets
		t.Bytes += rs.stats.Bytes
		t.KernelDrops += rs.stats.KernelDrops
		t.Malformed += rs.stats.Malformed
		out[k] = t
		rs.mu.Unlock()
	}
	return out
}

// MemberPackets returns the frames each ring of the interface (netns:name)
// captured, in member order: how a fanout group spread them.
func (c *Capture) MemberPackets(key string) []uint64 {
	var out []uint64
	for _, rs := range c.rings {
		if rs.key() == key {
			rs.mu.Lock()
			out = append(out, rs.stats.Packets)
			rs.mu.Unlock()
		}
	}
	return out
}

func (rs *ringState) key() string { return rs.iface.Netns + ":" + rs.iface.Name }

// pollDrops adds the kernel's drops since the last poll to the interface's
// counter and logs them: a user sees loss in the log even without /metrics.
func (rs *ringState) pollDrops() {
	_, drops, err := rs.ring.Stats()
	if err != nil || drops == 0 {
		return
	}
	rs.mu.Lock()
	rs.stats.KernelDrops += uint64(drops)
	total := rs.stats.KernelDrops
	rs.mu.Unlock()
	rs.c.opt.Logger.Warn("packet drops", "iface", rs.key(), "new", drops, "total", total)
}

// Flush ends every flow's pending exchanges now, once each ring's reader
// has taken the frames the kernel had written into its ring when Flush was
// called (drain.go; a reader that stopped is not waited for, and the wait is
// bounded by DrainBound).
func (c *Capture) Flush() {
	c.drainLoops()
	c.closeFlows()
}

func (c *Capture) closeFlows() {
	now := time.Now().UnixNano()
	for _, rs := range c.rings {
		rs.mu.Lock()
		for k, fl := range rs.flows {
			fl.conn.Close(now)
			delete(rs.flows, k)
		}
		rs.flushTLS()
		rs.mu.Unlock()
	}
}

// Close stops the readers, takes what the rings still hold (every frame the
// kernel had written into them by then, bounded by DrainBound), ends every
// flow's pending exchanges and closes the rings.
func (c *Capture) Close() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.wg.Wait()
	c.drainStopped()
	c.closeFlows()
	var errs []error
	final := c.Stats() // reads the kernel's drop counters a last time
	logged := map[string]bool{}
	for _, rs := range c.rings {
		if k := rs.key(); !logged[k] {
			logged[k] = true
			st := final[k]
			c.opt.Logger.Info("packet capture stopped", "iface", k,
				"packets", st.Packets, "drops", st.KernelDrops, "malformed", st.Malformed)
		}
		errs = append(errs, rs.ring.Close())
	}
	c.final = final
	c.rings = nil
	return errors.Join(errs...)
}

// MatchInterfaces lists the interfaces of the namespace at nsPath ("" = the
// collector's) whose names match the glob pattern.
func MatchInterfaces(nsPath, pattern string) ([]string, error) {
	var names []string
	err := inNetns(nsPath, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, ifc := range ifs {
			if ok, err := path.Match(pattern, ifc.Name); err != nil {
				return fmt.Errorf("interface pattern %q: %w", pattern, err)
			} else if ok {
				names = append(names, ifc.Name)
			}
		}
		return nil
	})
	return names, err
}
