package span

import "fmt"

// SignalSource tells what observed a span.
type SignalSource uint8

const (
	SourceUnknown SignalSource = iota
	SourceEBPF
	SourcePacket
	SourceOTel
)

var signalSourceNames = [...]string{"", "ebpf", "packet", "otel"}

func (s SignalSource) String() string { return enumName(signalSourceNames[:], int(s)) }

// ParseSignalSource is the inverse of String.
func ParseSignalSource(s string) (SignalSource, error) {
	i, err := enumParse(signalSourceNames[:], s, "signal source")
	return SignalSource(i), err
}

// TapSide is where along a hop a span was observed.
type TapSide uint8

const (
	TapUnknown       TapSide = iota
	TapClientProcess         // c-p: client process syscalls
	TapClientNIC             // c: client's own NIC (host side of the pod veth)
	TapClientNode            // c-nd: client's node NIC
	TapServerNode            // s-nd: server's node NIC
	TapServerNIC             // s: server's own NIC
	TapServerProcess         // s-p: server process syscalls
	TapLocal                 // local: both ends local
	TapRest                  // rest: any other interface
	TapClientApp             // c-app: instrumented client application
	TapServerApp             // s-app: instrumented server application
	TapApp                   // app: instrumented application, internal
)

var tapSideNames = [...]string{"", "c-p", "c", "c-nd", "s-nd", "s", "s-p", "local", "rest", "c-app", "s-app", "app"}

func (t TapSide) String() string { return enumName(tapSideNames[:], int(t)) }

// ParseTapSide is the inverse of String.
func ParseTapSide(s string) (TapSide, error) {
	i, err := enumParse(tapSideNames[:], s, "tap side")
	return TapSide(i), err
}

// tapRank orders observation points along one hop:
// c-app < c-p < c < c-nd < local/rest < s-nd < s < s-p < s-app < app.
var tapRank = [...]int{TapUnknown: 99, TapClientApp: 0, TapClientProcess: 1, TapClientNIC: 2,
	TapClientNode: 3, TapLocal: 4, TapRest: 4, TapServerNode: 5, TapServerNIC: 6,
	TapServerProcess: 7, TapServerApp: 8, TapApp: 9}

// Rank is the position of the tap side along a hop (smaller is nearer the client).
func (t TapSide) Rank() int {
	if int(t) >= len(tapRank) {
		return 99
	}
	return tapRank[t]
}

// IsProcess reports whether the span comes from a process's syscalls (c-p, s-p).
func (t TapSide) IsProcess() bool { return t == TapClientProcess || t == TapServerProcess }

// IsClient reports whether the tap side lies on the client half of a hop.
func (t TapSide) IsClient() bool {
	return t == TapClientProcess || t == TapClientNIC || t == TapClientNode || t == TapClientApp
}

// IsServer reports whether the tap side lies on the server half of a hop.
func (t TapSide) IsServer() bool {
	return t == TapServerProcess || t == TapServerNIC || t == TapServerNode || t == TapServerApp
}

// L4Protocol is the transport.
type L4Protocol uint8

const (
	L4Unknown L4Protocol = iota
	L4TCP
	L4UDP
)

var l4Names = [...]string{"", "tcp", "udp"}

func (p L4Protocol) String() string { return enumName(l4Names[:], int(p)) }

// ParseL4Protocol is the inverse of String.
func ParseL4Protocol(s string) (L4Protocol, error) {
	i, err := enumParse(l4Names[:], s, "l4 protocol")
	return L4Protocol(i), err
}

// TunnelType is the encapsulation a packet span was seen in.
type TunnelType uint8

const (
	TunnelNone TunnelType = iota
	TunnelVXLAN
	TunnelIPIP // IPv4 or IPv6 in IPv4 (and in IPv6)
	TunnelGRE
	TunnelGeneve
)

var tunnelNames = [...]string{"", "vxlan", "ipip", "gre", "geneve"}

func (t TunnelType) String() string { return enumName(tunnelNames[:], int(t)) }

// ParseTunnelType is the inverse of String.
func ParseTunnelType(s string) (TunnelType, error) {
	i, err := enumParse(tunnelNames[:], s, "tunnel type")
	return TunnelType(i), err
}

// L7Protocol is the application protocol of a span.
type L7Protocol uint8

const (
	L7Unknown L7Protocol = iota
	L7HTTP1
	L7HTTP2
	L7GRPC
	L7DNS
	L7Redis
	L7MySQL
	L7PostgreSQL
	L7Kafka
)

var l7Names = [...]string{"", "http", "http2", "grpc", "dns", "redis", "mysql", "postgresql", "kafka"}

func (p L7Protocol) String() string { return enumName(l7Names[:], int(p)) }

// ParseL7Protocol is the inverse of String.
func ParseL7Protocol(s string) (L7Protocol, error) {
	i, err := enumParse(l7Names[:], s, "l7 protocol")
	return L7Protocol(i), err
}

// ResponseStatus classifies the outcome of an exchange.
type ResponseStatus uint8

const (
	StatusUnknown ResponseStatus = iota
	StatusOK
	StatusClientError
	StatusServerError
	StatusTimeout
)

var statusNames = [...]string{"unknown", "ok", "client_error", "server_error", "timeout"}

func (s ResponseStatus) String() string { return enumName(statusNames[:], int(s)) }

// IsError reports client errors, server errors and timeouts.
func (s ResponseStatus) IsError() bool {
	return s == StatusClientError || s == StatusServerError || s == StatusTimeout
}

// ParseResponseStatus is the inverse of String ("" parses as unknown).
func ParseResponseStatus(s string) (ResponseStatus, error) {
	if s == "" {
		return StatusUnknown, nil
	}
	i, err := enumParse(statusNames[:], s, "response status")
	return ResponseStatus(i), err
}

func enumName(names []string, i int) string {
	if i < 0 || i >= len(names) {
		return fmt.Sprintf("invalid(%d)", i)
	}
	return names[i]
}

func enumParse(names []string, s, what string) (int, error) {
	for i, n := range names {
		if n == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", what, s)
}

// SpanKind is an OpenTelemetry span kind, as an SDK sent it (the values of
// OTLP's Span.SpanKind). eBPF and packet spans leave it unspecified: their
// kind follows from the tap side.
type SpanKind uint8

const (
	KindUnspecified SpanKind = iota
	KindInternal
	KindServer
	KindClient
	KindProducer
	KindConsumer
)

var spanKindNames = [...]string{"", "internal", "server", "client", "producer", "consumer"}

func (k SpanKind) String() string { return enumName(spanKindNames[:], int(k)) }
