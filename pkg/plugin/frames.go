package plugin

import (
	"encoding/json"
	"strconv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

type kv struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func jsonKV(pairs []kv) json.RawMessage {
	if pairs == nil {
		pairs = []kv{}
	}
	b, _ := json.Marshal(pairs)
	return b
}

// ServiceName is the name a span shows: its service (a sidecar proxy's is
// "<workload> (proxy)", so that a workload and its proxy are two services),
// else its process, else where a packet capture saw it.
func ServiceName(s *span.Span) string { return s.ServiceName() }

// OperationName is the SDK's span name, else "METHOD resource" (or the
// endpoint) of a span.
func OperationName(s *span.Span) string { return s.OperationName() }

func addrPort(a interface{ String() string }, p uint16) string {
	return a.String() + ":" + strconv.Itoa(int(p))
}
