package otlp

import (
	"net/netip"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// attrList collects a span's attributes before they go into its pdata map:
// the map is then allocated once at its exact size (growing it by appends
// copied it, and a guessed capacity wasted what it did not use). A Mapper
// keeps one and reuses it for every span.
type attrList struct {
	kvs []attrKV
	ips map[netip.Addr]string // addresses already formatted
}

type attrKV struct {
	k, s  string
	i     int64
	isInt bool
}

func (l *attrList) reset() { l.kvs = l.kvs[:0] }

// str adds k unless v is empty.
func (l *attrList) str(k, v string) {
	if v != "" {
		l.kvs = append(l.kvs, attrKV{k: k, s: v})
	}
}

// int adds k whatever v.
func (l *attrList) int(k string, v int64) { l.kvs = append(l.kvs, attrKV{k: k, i: v, isInt: true}) }

// addr adds k unless ip is invalid. The same few addresses recur in every
// span of a service: each is formatted once (the cache is bounded).
func (l *attrList) addr(k string, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	s, ok := l.ips[ip]
	if !ok {
		if l.ips == nil || len(l.ips) >= 4096 {
			l.ips = make(map[netip.Addr]string, 64)
		}
		s = ip.String()
		l.ips[ip] = s
	}
	l.kvs = append(l.kvs, attrKV{k: k, s: s})
}

// port adds k unless p is zero.
func (l *attrList) port(k string, p uint16) {
	if p != 0 {
		l.int(k, int64(p))
	}
}

// putTo puts the attributes into m, in the order they were added.
func (l *attrList) putTo(m pcommon.Map) {
	m.EnsureCapacity(m.Len() + len(l.kvs))
	for i := range l.kvs {
		kv := &l.kvs[i]
		if kv.isInt {
			m.PutInt(kv.k, kv.i)
		} else {
			m.PutStr(kv.k, kv.s)
		}
	}
}
