//go:build linux

package packet

import (
	"net/netip"

	pk "github.com/zerotrace/zerotrace/pkg/packet"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/tlsrecord"
)

// TLS flows (docs/packet.md "TLS flights"): a TCP connection whose first
// client bytes are a ClientHello is followed record by record
// (pkg/tlsrecord); each request flight of application data and the response
// flight that answers it become one span flagged tls, with the flights'
// sequence numbers and sizes. Its L7 fields stay empty: the span that read
// the plaintext gives them at assembly.

// tlsFlightIdle ends a flight nothing was added to for this long (a
// response whose client says nothing after it).
const tlsFlightIdle = int64(1e9)

type tlsFlow struct {
	fl     flow // client, tap side and tunnel, as a plaintext flow's
	server netip.AddrPort
	rec    tlsrecord.Flow
}

// handleTLS takes the segment if it belongs to a TLS flow, or starts one
// (a ClientHello); it returns false for every other segment.
func (rs *ringState) handleTLS(p *pk.Packet, f *Frame, k flowKey, src, dst netip.AddrPort, payload []byte) bool {
	if p.Proto != pk.ProtoTCP {
		return false
	}
	t := rs.tls[k]
	if t == nil {
		if !tlsrecord.IsClientHello(payload) {
			return false
		}
		if rs.tls == nil {
			rs.tls = map[flowKey]*tlsFlow{}
		}
		t = &tlsFlow{fl: flow{client: src, reqOutgoing: f.Outgoing}, server: dst}
		rs.tls[k] = t
	}
	t.fl.last = f.TimeNs
	t.fl.tunnel, t.fl.outerSrc, t.fl.outerDst = p.Tunnel, p.OuterSrc, p.OuterDst
	d := tlsrecord.ToServer
	if src != t.fl.client {
		d = tlsrecord.ToClient
	}
	if len(payload) > 0 {
		if ex, ok := t.rec.Feed(d, p.Seq, payload, p.Flags&pk.FlagPSH != 0, f.TimeNs); ok {
			rs.emitTLS(t, ex)
		}
	}
	if p.Flags&pk.FlagRST != 0 || (p.Flags&pk.FlagFIN != 0 && d == tlsrecord.ToClient) {
		// The server closing, or a reset, ends what was in flight. A client
		// that closes its side first may still get a response (half-close).
		if ex, ok := t.rec.Flush(); ok {
			rs.emitTLS(t, ex)
		}
		delete(rs.tls, k)
	}
	return true
}

// tickTLS ends idle flights and forgets flows silent for 3 timeouts.
func (rs *ringState) tickTLS(now int64) {
	for k, t := range rs.tls {
		if ex, ok := t.rec.Idle(now, tlsFlightIdle); ok {
			rs.emitTLS(t, ex)
		}
		if now-t.fl.last > int64(3*rs.c.opt.Timeout) {
			delete(rs.tls, k)
		}
	}
}

// flushTLS ends every TLS flow's exchanges now.
func (rs *ringState) flushTLS() {
	for k, t := range rs.tls {
		if ex, ok := t.rec.Flush(); ok {
			rs.emitTLS(t, ex)
		}
		delete(rs.tls, k)
	}
}

func (rs *ringState) emitTLS(t *tlsFlow, ex tlsrecord.Exchange) {
	cli, srv := t.fl.client, t.server
	s := &span.Span{
		SpanID: rs.c.ids.Next(), Node: rs.c.opt.Node, SignalSource: span.SourcePacket, NetNS: rs.netns, L4: span.L4TCP,
		ClientIP: cli.Addr(), ClientPort: cli.Port(), ServerIP: srv.Addr(), ServerPort: srv.Port(),
		StartNs: ex.Request.StartNs, EndNs: ex.Response.EndNs,
		ReqTCPSeq: ex.Request.AppSeq, RespTCPSeq: ex.Response.AppSeq,
		RequestBytes: int64(ex.Request.AppBytes), ResponseBytes: int64(ex.Response.AppBytes),
		ResponseStatus: span.StatusUnknown, Flags: span.FlagTLS,
	}
	if ex.Request.Lost || ex.Response.Lost {
		s.Flags |= span.FlagTruncated
	}
	s.IPVersion = 6
	if cli.Addr().Is4() {
		s.IPVersion = 4
	}
	rs.finish(&t.fl, s)
}
