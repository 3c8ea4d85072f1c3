package session

import (
	"cmp"
	"strings"

	"github.com/zerotrace/zerotrace/pkg/l7"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Endpoint normalises a resource: the query is cut and path segments that
// are numbers, UUIDs or long hex strings become {id}.
func Endpoint(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	// Each "/"-separated segment that is an id becomes {id}; a path with
	// none (most of them) is returned as it is, without allocating, and one
	// with ids costs one allocation.
	var b strings.Builder // empty until the first id segment
	for start := 0; ; {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		if isID(path[start:end]) {
			if b.Len() == 0 {
				b.Grow(len(path) + 8)
				b.WriteString(path[:start])
			}
			b.WriteString("{id}")
		} else if b.Len() > 0 {
			b.WriteString(path[start:end])
		}
		if end == len(path) {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		start = end + 1
	}
	if b.Len() == 0 {
		return path
	}
	return b.String()
}

func isID(s string) bool {
	if s == "" {
		return false
	}
	digits, hexes := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F'):
			hexes++
		case r == '-':
		default:
			return false
		}
	}
	return digits == len(s) || (len(s) >= 16 && digits > 0) || (len(s) == 36 && strings.Count(s, "-") == 4)
}

// endpointOf is the normalised resource of HTTP (from the resource as
// stored, redacted), the normalised statement of SQL, the topic of Kafka
// and the command of the others.
func endpointOf(m *l7.Message, resource string) string {
	switch m.Protocol {
	case span.L7HTTP1, span.L7HTTP2, span.L7GRPC:
		return Endpoint(resource)
	case span.L7MySQL, span.L7PostgreSQL:
		return cmp.Or(m.Path, m.Method)
	case span.L7Kafka:
		return cmp.Or(m.Path, m.Method)
	}
	return m.Method
}
