package redact

import (
	"strings"
	"testing"
)

// BenchmarkURL: what redaction costs per span, by resource.
func BenchmarkURL(b *testing.B) {
	r := Default()
	for _, bc := range []struct{ name, in string }{
		{"path", "/api/v1/products/0/reviews"},
		{"grpc", "/grpc.health.v1.Health/Check"},
		{"query", "/productpage?u=normal&page=2&sort=asc"},
		{"secrets", "/productpage?password=SECRETPW000&token=SECRETQ111&page=2"},
		{"presigned", "/f?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=abc123"},
		{"userinfo", "http://user:pass@example.com/p?q=1"},
		{"long", "/p?" + strings.Repeat("name=value&", 46)}, // 512 bytes, the stored maximum
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				r.URL(bc.in)
			}
		})
	}
}

func BenchmarkArgs(b *testing.B) {
	argv := strings.Fields("curl -s -o /dev/null -H Host:productpage http://127.0.0.1:15001/productpage?u=normal")
	b.ReportAllocs()
	for b.Loop() {
		Default().Args(argv)
	}
}
