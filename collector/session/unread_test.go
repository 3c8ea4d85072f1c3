package session

import (
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestUnreadResponse: a kept-alive client connection whose first response
// was read by a call the capture did not see (Unread at 150): the first
// request ends there, unanswered, and every later request keeps its own
// response (without Unread, /1 would take /2's response and /2 /3's).
func TestUnreadResponse(t *testing.T) {
	for _, unread := range []bool{true, false} {
		var r rec
		c := newConn(&r)
		c.Feed(chunk(Egress, 100, 1000, "GET /1 HTTP/1.1\r\n\r\n"))
		if unread {
			c.Unread(Ingress, 150, 7000)
		}
		c.Feed(chunk(Egress, 200, 1019, "GET /2 HTTP/1.1\r\n\r\n"))
		c.Feed(chunk(Ingress, 250, 7100, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-ID: r2\r\n\r\nok"))
		c.Feed(chunk(Egress, 300, 1038, "GET /3 HTTP/1.1\r\n\r\n"))
		c.Feed(chunk(Ingress, 350, 7200, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-ID: r3\r\n\r\nok"))
		c.Close(400)
		got := map[string]span.Span{}
		for _, s := range r.spans {
			got[s.RequestResource] = s
		}
		if !unread {
			if got["/1"].XRequestIDResp != "r2" {
				t.Fatalf("without Unread /1 should take /2's response (the bug this guards): %+v", got["/1"])
			}
			continue
		}
		if len(r.spans) != 3 {
			t.Fatalf("%d spans: %+v", len(r.spans), r.spans)
		}
		if s := got["/1"]; s.EndNs != 150 || s.RespTCPSeq != 7000 || s.ResponseStatus != span.StatusUnknown || s.ResponseCode != 0 || !s.Flags.Has(span.FlagTruncated) {
			t.Errorf("/1: %+v", s)
		}
		for _, p := range []struct{ path, xrid string }{{"/2", "r2"}, {"/3", "r3"}} {
			if s := got[p.path]; s.XRequestIDResp != p.xrid || s.ResponseCode != 200 || s.Flags.Has(span.FlagTruncated) || s.Flags.Has(span.FlagMultiplexed) {
				t.Errorf("%s: %+v", p.path, s)
			}
		}
	}
}

// TestUnreadIgnored: bytes unread in the request direction, with no
// request waiting, or before the waiting request was sent change nothing;
// unread bytes during a response's body end that response.
func TestUnreadIgnored(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.Unread(Ingress, 50, 1) // role unknown
	c.Feed(chunk(Egress, 100, 1000, "GET /1 HTTP/1.1\r\n\r\n"))
	c.Unread(Egress, 120, 1) // the request direction
	c.Unread(Ingress, 90, 1) // before the request
	c.Feed(chunk(Ingress, 150, 7000, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"))
	if len(r.spans) != 0 {
		t.Fatalf("spans before the body ends: %+v", r.spans)
	}
	c.Unread(Ingress, 160, 7050) // the rest of the body
	c.Unread(Ingress, 170, 7060) // nothing waiting
	if len(r.spans) != 1 || r.spans[0].EndNs != 160 || r.spans[0].ResponseCode != 200 || !r.spans[0].Flags.Has(span.FlagTruncated) {
		t.Fatalf("spans %+v", r.spans)
	}
}

// TestUnreadRedis: on a Redis connection (a stream decoder), a reply read
// by a call the capture did not see ends its command there, unanswered,
// also when the reply's first part had been read; the decoder waits for a
// chunk that starts a reply, so the next command keeps its own.
func TestUnreadRedis(t *testing.T) {
	for _, first := range []string{"", "$10\r\nhel"} {
		var r rec
		c := newConn(&r)
		c.SetRole(RoleClient)
		c.Feed(chunk(Egress, 100, 1000, string(resp("GET", "a"))))
		if first != "" {
			c.Feed(chunk(Ingress, 120, 7000, first))
		}
		c.Unread(Ingress, 150, 7000+uint32(len(first)))
		c.Feed(chunk(Egress, 200, 1020, string(resp("GET", "bb"))))
		c.Feed(chunk(Ingress, 250, 7100, "$2\r\nBB\r\n"))
		c.Close(400)
		if len(r.spans) != 2 {
			t.Fatalf("first part %q: %d spans: %s", first, len(r.spans), spansText(r.spans))
		}
		if a := r.spans[0]; a.RequestResource != "a" || a.EndNs != 150 || a.ResponseStatus != span.StatusUnknown || !a.Flags.Has(span.FlagTruncated) {
			t.Errorf("first part %q: a: %s", first, spansText(r.spans[:1]))
		}
		if b := r.spans[1]; b.RequestResource != "bb" || b.ResponseBytes != 8 || b.RespTCPSeq != 7100 || b.ResponseStatus != span.StatusOK {
			t.Errorf("first part %q: bb: %s", first, spansText(r.spans[1:]))
		}
	}
}
