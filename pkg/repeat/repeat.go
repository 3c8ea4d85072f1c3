package repeat

import (
	"fmt"
	"slices"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Defaults of Bound: one request makes a handful of exchanges at a point
// (a proxy's inbound leg and the calls of an application that forwards the
// id through the same sidecar); a hundred within a minute is reuse.
const (
	DefaultExchanges = 100
	DefaultWindow    = time.Minute
)

// Bound is how many exchanges with one key one point may see within Window
// before the key counts as repeated.
type Bound struct {
	Exchanges int
	Window    time.Duration
}

// OrDefault fills zero fields with the defaults.
func (b Bound) OrDefault() Bound {
	if b.Exchanges <= 0 {
		b.Exchanges = DefaultExchanges
	}
	if b.Window <= 0 {
		b.Window = DefaultWindow
	}
	return b
}

// Point is where exchanges are counted: a process (eBPF) or a capture
// interface and tap side (packets) of a node.
type Point struct {
	Node string
	PID  uint32
	NIC  string
	Tap  span.TapSide
}

func (p Point) String() string {
	if p.PID != 0 {
		return fmt.Sprintf("pid %d on %s", p.PID, p.Node)
	}
	return fmt.Sprintf("%s %s on %s", p.NIC, p.Tap, p.Node)
}

// PointOf returns the point of a span that is an exchange a server received:
// an s-p span of a known process, or an s or s-nd packet span.
func PointOf(s *span.Span) (Point, bool) {
	switch {
	case s.SignalSource == span.SourceEBPF && s.TapSide == span.TapServerProcess && s.PID != 0:
		return Point{Node: s.Node, PID: s.PID, Tap: s.TapSide}, true
	case s.SignalSource == span.SourcePacket && (s.TapSide == span.TapServerNIC || s.TapSide == span.TapServerNode):
		return Point{Node: s.Node, NIC: s.CaptureNIC, Tap: s.TapSide}, true
	}
	return Point{}, false
}

// Keys appends the keys of s that can repeat: its request and response
// X-Request-IDs (once if equal) and its trace id.
func Keys(s *span.Span, dst []span.Key) []span.Key {
	if s.XRequestIDReq != "" {
		dst = append(dst, span.Key{Kind: span.KeyXRequestID, S: s.XRequestIDReq})
	}
	if s.XRequestIDResp != "" && s.XRequestIDResp != s.XRequestIDReq {
		dst = append(dst, span.Key{Kind: span.KeyXRequestID, S: s.XRequestIDResp})
	}
	if !s.TraceID.IsZero() {
		dst = append(dst, span.Key{Kind: span.KeyTraceID, T: s.TraceID})
	}
	return dst
}

// KeyString is a key's value as a user reads it: the X-Request-ID, or the
// trace id in hex.
func KeyString(k span.Key) string {
	if k.Kind == span.KeyTraceID {
		return k.T.String()
	}
	return k.S
}

// Repeated is a key seen on more exchanges at one point than the bound
// allows.
type Repeated struct {
	Key       span.Key
	Point     Point
	Service   string // the service of the point's spans, if known
	Exchanges int    // the most exchanges with the key at Point within one window
}

// Most returns the most exchanges that spans (every span carrying the key,
// in any order) show at one point within any window of length w, and the
// point. Spans that are not exchanges (PointOf) are not counted.
func Most(spans []*span.Span, w time.Duration) (n int, at Point, service string) {
	byPoint := map[Point][]int64{}
	svc := map[Point]string{}
	for _, s := range spans {
		if p, ok := PointOf(s); ok {
			byPoint[p] = append(byPoint[p], s.StartNs)
			if svc[p] == "" {
				svc[p] = s.Service
			}
		}
	}
	var atName string // at.String(), formatted at its first tie
	for p, starts := range byPoint {
		if len(starts) < n {
			continue
		}
		slices.Sort(starts)
		lo := 0
		var name string // p.String(), likewise
		for hi, t := range starts {
			for t-starts[lo] >= int64(w) {
				lo++
			}
			c := hi - lo + 1
			if c < n {
				continue
			}
			if c == n { // a tie: the point whose name sorts first
				if name == "" {
					name = p.String()
				}
				if atName == "" {
					atName = at.String()
				}
				if name >= atName {
					continue
				}
			}
			n, at, atName = c, p, name
		}
	}
	return n, at, svc[at]
}
