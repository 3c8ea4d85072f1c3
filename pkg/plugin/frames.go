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
func ServiceName(s *span.Span) string {
	switch {
	case s.Service != "" && s.Flags.Has(span.FlagProxy):
		return s.Service + " (proxy)"
	case s.Service != "":
		return s.Service
	case s.ProcessName != "":
		return s.ProcessName
	case s.CaptureNIC != "":
		return s.CaptureNIC + "@" + s.Node
	}
	return s.Node
}

// OperationName is "METHOD resource" (or the endpoint) of a span.
func OperationName(s *span.Span) string {
	res := s.Endpoint
	if res == "" {
		res = s.RequestResource
	}
	switch {
	case s.RequestType != "" && res != "":
		return s.RequestType + " " + res
	case res != "":
		return res
	case s.RequestType != "":
		return s.RequestType
	}
	return s.L7Protocol.String()
}

func addrPort(a interface{ String() string }, p uint16) string {
	return a.String() + ":" + strconv.Itoa(int(p))
}
