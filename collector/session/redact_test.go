package session

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/zerotrace/zerotrace/pkg/redact"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// secretsIn returns the string fields of s holding any of the secrets.
func secretsIn(s *span.Span, secrets ...string) []string {
	var out []string
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.String {
			continue
		}
		for _, sec := range secrets {
			if strings.Contains(f.String(), sec) {
				out = append(out, v.Type().Field(i).Name+"="+f.String())
			}
		}
	}
	return out
}

func connWith(r *rec, src span.SignalSource, red *redact.Redactor) *Conn {
	return NewConn(ConnMeta{Node: "n", Source: src, PID: 7, ProcessName: "curl",
		LocalIP: netip.MustParseAddr("10.0.0.1"), LocalPort: 40000, RemoteIP: netip.MustParseAddr("10.0.0.2"), RemotePort: 80},
		Config{Timeout: time.Second, Redact: red}, r.emit)
}

// TestRedactHTTP1: the spans of both captures keep the path and the
// harmless parameters and replace the values of sensitive ones and the
// userinfo of an absolute-form target and of the Host header.
func TestRedactHTTP1(t *testing.T) {
	secrets := []string{"SECRETPW000", "SECRETQ111", "SECRETUI222", "SECRETHOST333", "SECRETSIG444"}
	for _, tc := range []struct {
		req, resource, endpoint, domain string
	}{
		{"GET /productpage?password=SECRETPW000&token=SECRETQ111&u=normal HTTP/1.1\r\nHost: productpage\r\n\r\n",
			"/productpage?password=REDACTED&token=REDACTED&u=normal", "/productpage", "productpage"},
		{"GET http://alice:SECRETUI222@productpage/productpage?u=normal HTTP/1.1\r\nHost: bob:SECRETHOST333@productpage\r\n\r\n",
			"http://REDACTED:REDACTED@productpage/productpage?u=normal", "http://REDACTED:REDACTED@productpage/productpage", "REDACTED:REDACTED@productpage"},
		{"PUT /b/o;jsessionid=SECRETQ111?X-Amz-Signature=SECRETSIG444&X-Amz-Expires=60 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
			"/b/o;jsessionid=REDACTED?X-Amz-Signature=REDACTED&X-Amz-Expires=60", "/b/o;jsessionid=REDACTED", ""},
	} {
		for _, src := range []span.SignalSource{span.SourceEBPF, span.SourcePacket} {
			var r rec
			c := connWith(&r, src, nil)
			c.Feed(chunk(Egress, 1, 1, tc.req))
			c.Feed(chunk(Ingress, 2, 1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			if len(r.spans) != 1 {
				t.Fatalf("%s: %d spans", src, len(r.spans))
			}
			s := r.spans[0]
			if l := secretsIn(&s, secrets...); l != nil {
				t.Errorf("%s: secrets kept: %v", src, l)
			}
			if s.RequestResource != tc.resource || s.Endpoint != tc.endpoint || s.RequestDomain != tc.domain {
				t.Errorf("%s: resource %q endpoint %q domain %q, want %q %q %q", src, s.RequestResource, s.Endpoint,
					s.RequestDomain, tc.resource, tc.endpoint, tc.domain)
			}
		}
	}
}

// TestRedactConfigured: the connection's redactor decides (here every
// query value), and a redactor of mode none keeps the query as it came.
func TestRedactConfigured(t *testing.T) {
	all, _ := redact.New(redact.All, nil)
	none, _ := redact.New(redact.None, nil)
	for _, tc := range []struct {
		r    *redact.Redactor
		want string
	}{
		{all, "/p?u=REDACTED&token=REDACTED"},
		{none, "/p?u=normal&token=T"},
		{nil, "/p?u=normal&token=REDACTED"},
	} {
		var r rec
		c := connWith(&r, span.SourceEBPF, tc.r)
		c.Feed(chunk(Egress, 1, 1, "GET /p?u=normal&token=T HTTP/1.1\r\n\r\n"))
		c.Feed(chunk(Ingress, 2, 1, "HTTP/1.1 204 No Content\r\n\r\n"))
		if len(r.spans) != 1 || r.spans[0].RequestResource != tc.want {
			t.Errorf("%v: %+v, want resource %q", tc.r, r.spans, tc.want)
		}
	}
}

// TestRedactHTTP2: HTTP/2's :path and :authority are redacted like
// HTTP/1's target, and of gRPC metadata only trace context and
// X-Request-ID reach a span (authorization, API keys and binary metadata
// do not).
func TestRedactHTTP2(t *testing.T) {
	var req, resp, hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func(kv ...string) []byte {
		hb.Reset()
		for i := 0; i < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	req.WriteString(http2.ClientPreface)
	fr, fw := http2.NewFramer(&req, nil), http2.NewFramer(&resp, nil)
	fr.WriteSettings()
	fw.WriteSettings()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: block(
		":method", "GET", ":scheme", "https", ":authority", "carol:SECRETAUTH555@api", ":path", "/v1/items?access_token=SECRETTOK666&page=2",
		"authorization", "Bearer SECRETBEARER777", "x-api-key", "SECRETKEY888", "x-request-id", "rid-1")})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, BlockFragment: block(
		":method", "POST", ":scheme", "http", ":authority", "reviews:9080", ":path", "/reviews.Reviews/Get", "content-type", "application/grpc",
		"authorization", "Bearer SECRETBEARER777", "token-bin", "U0VDUkVUQklO", "x-session", "SECRETMETA999",
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")})
	fr.WriteData(3, true, []byte{0, 0, 0, 0, 0})
	fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: block(":status", "200")})
	fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, BlockFragment: block(":status", "200", "content-type", "application/grpc")})
	fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, EndStream: true, BlockFragment: block("grpc-status", "0")})
	var r rec
	c := connWith(&r, span.SourceEBPF, nil)
	c.Feed(chunk(Egress, 1, 1, req.String()))
	c.Feed(chunk(Ingress, 2, 1, resp.String()))
	if len(r.spans) != 2 {
		t.Fatalf("%d spans", len(r.spans))
	}
	got := map[string]span.Span{}
	for _, s := range r.spans {
		got[s.L7Protocol.String()] = s
		if l := secretsIn(&s, "SECRET", "U0VDUkVUQklO"); l != nil {
			t.Errorf("%s: secrets kept: %v", s.L7Protocol, l)
		}
	}
	h, g := got[span.L7HTTP2.String()], got[span.L7GRPC.String()]
	if h.RequestResource != "/v1/items?access_token=REDACTED&page=2" || h.RequestDomain != "REDACTED:REDACTED@api" || h.XRequestIDReq != "rid-1" {
		t.Errorf("HTTP/2 span: resource %q domain %q x-request-id %q", h.RequestResource, h.RequestDomain, h.XRequestIDReq)
	}
	if g.RequestResource != "/reviews.Reviews/Get" || g.TraceID.String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("gRPC span: resource %q trace %s", g.RequestResource, g.TraceID)
	}
}

// TestRedactLogins: a Redis AUTH through a session keeps its command only.
func TestRedactLogins(t *testing.T) {
	var r rec
	c := connWith(&r, span.SourceEBPF, nil)
	c.Feed(chunk(Egress, 1, 1, "*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$15\r\nSECRETREDIS000x\r\n"))
	c.Feed(chunk(Ingress, 2, 1, "+OK\r\n"))
	c.Feed(chunk(Egress, 3, 40, "*2\r\n$3\r\nGET\r\n$4\r\nbook\r\n"))
	c.Feed(chunk(Ingress, 4, 6, "$4\r\nDune\r\n"))
	if len(r.spans) != 2 || r.spans[0].RequestType != "AUTH" || r.spans[1].RequestResource != "book" {
		t.Fatalf("spans %+v", r.spans)
	}
	for _, s := range r.spans {
		if l := secretsIn(&s, "SECRETREDIS", "alice"); l != nil {
			t.Errorf("secrets kept: %v", l)
		}
	}
}

// BenchmarkSessionExchangeQuery: BenchmarkSessionExchange with a query
// string, harmless or with secrets: what redaction costs per span.
func BenchmarkSessionExchangeQuery(b *testing.B) {
	for _, bc := range []struct{ name, target string }{
		{"plain", "/reviews/0"},
		{"query", "/productpage?u=normal&page=2&sort=asc"},
		{"secrets", "/productpage?password=SECRETPW000&token=SECRETQ111&u=normal"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			c := NewConn(ConnMeta{Node: "n"}, Config{}, func(*span.Span) { n++ })
			req := []byte("GET " + bc.target + " HTTP/1.1\r\nHost: reviews\r\nX-Request-ID: abc\r\n\r\n")
			resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.Feed(Chunk{Dir: Egress, StartNs: int64(i), EndNs: int64(i), Data: req, Len: len(req)})
				c.Feed(Chunk{Dir: Ingress, StartNs: int64(i), EndNs: int64(i), Data: resp, Len: len(resp)})
			}
		})
	}
}
