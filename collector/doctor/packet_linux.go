//go:build linux

package doctor

import (
	"fmt"
	"strings"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/collector/packet"
)

// packetChecks matches the configured interface patterns and opens rings
// on the first interface each matches (on lo when none is configured) as
// the collector would: one ring, and a fanout group.
func packetChecks(cfg *agent.Config) []Check {
	geo := packet.Geometry{BlockSize: cfg.Packet.BlockSize, Blocks: cfg.Packet.Blocks}
	on := len(cfg.Packet.Interfaces) > 0
	type target struct{ ns, iface string }
	targets := []target{{"", "lo"}}
	var out []Check
	if on {
		targets = nil
		var found, empty []string
		for _, ic := range cfg.Packet.Interfaces {
			ns := ic.Netns
			if ns != "" && !strings.Contains(ns, "/") {
				ns = "/run/netns/" + ns
			}
			where := ic.Pattern
			if ic.Netns != "" {
				where = ic.Netns + "/" + ic.Pattern
			}
			names, err := packet.MatchInterfaces(ns, ic.Pattern)
			switch {
			case err != nil:
				empty = append(empty, where+": "+err.Error())
			case len(names) == 0:
				empty = append(empty, where+": no interface")
			default:
				found = append(found, fmt.Sprintf("%s: %d (%s)", where, len(names), strings.Join(names[:min(len(names), 4)], ", ")))
				targets = append(targets, target{ns, names[0]})
			}
		}
		if len(empty) > 0 {
			out = append(out, missing("packet interfaces", strings.Join(append(empty, found...), "; "),
				"the collector refuses to start while a pattern matches no interface"))
		} else {
			out = append(out, ok("packet interfaces", strings.Join(found, "; ")))
		}
	} else {
		out = append(out, unused("packet interfaces", "none configured (packet.interfaces, --packet-iface): no packet capture"))
	}
	ringDetail := fmt.Sprintf("a TPACKET_V3 ring of %d × %s", geo.Blocks, bytesText(int64(geo.BlockSize)))
	fanout := max(cfg.Packet.Fanout, 2)
	var ringErr, fanErr error
	var where []string
	for _, t := range targets {
		where = append(where, strings.TrimPrefix(t.ns+"/", "/")+t.iface)
		if err := packet.Probe(t.ns, t.iface, geo, 1); err != nil && ringErr == nil {
			ringErr = fmt.Errorf("%s: %w", t.iface, err)
		}
		if err := packet.Probe(t.ns, t.iface, geo, fanout); err != nil && fanErr == nil {
			fanErr = fmt.Errorf("%s: %w", t.iface, err)
		}
	}
	on1 := strings.Join(where, ", ")
	switch {
	case ringErr == nil:
		out = append(out, ok("AF_PACKET", ringDetail+" opens on "+on1))
	case on:
		out = append(out, missing("AF_PACKET", ringErr.Error(), "no packet capture (CAP_NET_RAW opens AF_PACKET sockets)"))
	default:
		out = append(out, unused("AF_PACKET", "refused ("+ringErr.Error()+"); no packet interfaces are configured"))
	}
	fanDetail := fmt.Sprintf("a PACKET_FANOUT group of %d such rings opens on %s", fanout, on1)
	switch {
	case fanErr == nil && (!on || cfg.Packet.Fanout <= 1):
		out = append(out, ok("packet fanout", fanDetail+" (configured: "+fmt.Sprint(cfg.Packet.Fanout)+" ring per interface)"))
	case fanErr == nil:
		out = append(out, ok("packet fanout", fanDetail))
	case on && cfg.Packet.Fanout > 1:
		out = append(out, missing("packet fanout", fanErr.Error(), "the packet capture does not start with packet.fanout > 1"))
	default:
		out = append(out, unused("packet fanout", "refused ("+fanErr.Error()+"); packet.fanout is 1"))
	}
	return out
}
