package session

import (
	"cmp"

	"github.com/zerotrace/zerotrace/pkg/l7"
	"github.com/zerotrace/zerotrace/pkg/redact"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// stored is what a span keeps of a request's resource and domain. For HTTP
// (HTTP/1, HTTP/2's :path and :authority, gRPC) the values of sensitive
// parameters and the userinfo of URLs are replaced (pkg/redact), here where
// every capture's spans are built, once per span. Header values never
// reach a Message but X-Request-ID and trace context, and protocol logins
// (Redis AUTH, PostgreSQL password messages, MySQL authentication, Kafka
// SASL) are never read into one (pkg/l7); SQL text comes with its literals
// replaced.
func (c *Conn) stored(m *l7.Message) (resource, domain string) {
	switch m.Protocol {
	case span.L7HTTP1, span.L7HTTP2, span.L7GRPC:
		return c.cfg.Redact.URL(m.Path), redact.Host(m.Host)
	}
	return m.Path, cmp.Or(m.Host, m.Database)
}
