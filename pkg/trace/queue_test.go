package trace

import (
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// queued returns request r (xreq, no gateway) whose application read the
// proxy's request wait seconds after the proxy wrote it: a worker pool
// smaller than the load leaves it in the socket. The proxy's call and the
// application's request name one connection unless otherConn.
func queued(r int, wait time.Duration, otherConn bool) []span.Span {
	spans := xreq(r, reqOpts{xrid: "q-" + string(rune('a'+r)), at: time.Duration(r) * 20 * time.Second})
	var out *span.Span
	for i := range spans {
		if spans[i].SpanID%100 == kProxyOut {
			out = &spans[i]
		}
	}
	w := int64(wait)
	for i := range spans {
		s := &spans[i]
		switch s.SpanID % 100 {
		case kClient, kProxyIn, kProxyOut:
			s.EndNs += w
		case kAppIn:
			s.StartNs += w
			s.EndNs += w
			s.ClientPort = out.ClientPort
			if otherConn {
				s.ClientPort++
			}
		case kAppOut, kDown:
			s.StartNs += w
			s.EndNs += w
		}
	}
	return spans
}

// TestQueuedRequestOnItsConnection: a request read seconds after it was
// written on one connection stays under the call that wrote it. Before the
// connection was compared, the tcp relation refused it after 1 s and the
// application's request hung by its X-Request-ID under the proxy's inbound
// request (a misplaced parent; TestVariants/completable under CI load, 7 of
// 32 concurrent requests).
func TestQueuedRequestOnItsConnection(t *testing.T) {
	var spans []span.Span
	for r := range 3 {
		spans = append(spans, queued(r, time.Duration(r+1)*1500*time.Millisecond, false)...)
	}
	var cases []xcase
	for r := range 3 {
		cases = append(cases, xcase{
			name:   "request " + string(rune('0'+r)) + " read late on its connection",
			spans:  spans,
			seeds:  ids(r, whole),
			want:   tree(r, whole),
			reason: map[uint64]Evidence{uint64(r*100 + kAppIn): EvidenceTCP},
		})
	}
	// The same sequence number on another connection seconds later is
	// another message: the tcp relation does not join it after the queue
	// delay. The X-Request-ID does not hang it under the proxy's inbound
	// request either: the proxy's call to its port was captured, so the
	// request is that call's or nobody's (a root, not a misplaced child).
	other := queued(0, 3*time.Second, true)
	cases = append(cases, xcase{
		name:  "another connection, from the application's request: its own trace",
		spans: other,
		seeds: []uint64{kAppIn, kDown},
		want:  tree(0, map[int]int{kAppIn: 0, kAppOut: kAppIn, kDown: kAppOut}),
	}, xcase{
		name:  "another connection, from the client: the proxy's call ends the trace",
		spans: other,
		seeds: []uint64{kClient, kProxyOut},
		want:  tree(0, map[int]int{kClient: 0, kProxyIn: kClient, kProxyOut: kProxyIn}),
	})
	runXCases(t, cases)
}
