package span

import (
	"encoding/hex"
	"net/netip"
	"time"
)

// Span is one request/response exchange observed at one point.
//
// Zero values mean "not known": an empty string, a zero id, a zero sequence
// number, an invalid netip.Addr. Stores skip zero keys when indexing.
type Span struct {
	// Identity.
	SpanID       uint64       // collector-unique, see IDGenerator (an SDK span: the SDK's span id)
	Node         string       // collector / node name
	SignalSource SignalSource // ebpf | packet | otel
	TapSide      TapSide
	CaptureNIC   string // packet spans: interface name
	NetNS        uint64 // network namespace inode

	// Time, wall clock in nanoseconds since the Unix epoch.
	StartNs int64 // eBPF: entry of the first request write; packets: first request packet
	EndNs   int64 // eBPF: exit of the response read; packets: last response packet seen

	// Process (eBPF spans).
	PID         uint32
	ReqTID      uint32 // thread that sent/received the request
	RespTID     uint32 // thread that sent/received the response
	ProcessName string // from /proc/<pid>/exe or cmdline
	Comm        string // kernel comm of the thread
	Cmdline     string
	ContainerID string // from the cgroup path
	Pod         string
	Namespace   string
	Service     string // the workload (container name when its pod has several), else the process name or a config rule
	SocketID    uint64 // eBPF: kernel socket cookie / pointer hash, 0 for packets

	// Network.
	IPVersion      uint8 // 4 or 6
	ClientIP       netip.Addr
	ClientPort     uint16
	ServerIP       netip.Addr
	ServerPort     uint16
	L4             L4Protocol
	TunnelType     TunnelType
	TunnelOuterSrc netip.Addr
	TunnelOuterDst netip.Addr

	// L7.
	L7Protocol        L7Protocol
	L7Version         string // e.g. "1.1", "2"
	RequestType       string // method / command
	RequestDomain     string // host / database
	RequestResource   string // path / statement, truncated
	Endpoint          string // normalised resource
	ResponseCode      int32
	ResponseStatus    ResponseStatus
	ResponseException string
	RequestBytes      int64
	ResponseBytes     int64
	ResultCount       int64  // rows affected or returned (SQL), answers (DNS)
	StreamID          uint32 // protocol-level request id (HTTP/2 stream, DNS id, Kafka correlation id)

	// Correlation keys.
	ReqTCPSeq          uint32 // TCP sequence number of the first request payload byte
	RespTCPSeq         uint32 // TCP sequence number of the first response payload byte
	SyscallTraceIDReq  uint64
	SyscallTraceIDResp uint64
	XRequestIDReq      string
	XRequestIDResp     string
	TraceID            TraceID // from traceparent / b3 / uber-trace-id
	ParentSpanID       uint64  // app-propagated parent span id
	AppSpanID          uint64  // app-propagated span id

	Flags Flags

	// Workload (schema span/2): from the Kubernetes API, the kubelet or the
	// collector's netns → pod mapping (collector/kube).
	Workload      string // e.g. "productpage-v1": Deployment, StatefulSet, DaemonSet, CronJob, Job, or the pod
	WorkloadKind  string // "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet", "Pod"
	ContainerName string // the container in the pod spec

	// OpenTelemetry SDK spans (schema span/3, signal source otel; zero for
	// eBPF and packet spans): what the SDK said that has no field above.
	// SpanID is the SDK's span id (also AppSpanID), ParentSpanID its
	// parent's, TraceID its trace id (docs/otlp.md).
	Name       string   // the SDK's span name
	Kind       SpanKind // the SDK's span kind
	Attributes string   // the SDK span's other attributes, a JSON object
	Resource   string   // the SDK's resource attributes, a JSON object
	Scope      string   // instrumentation scope, "name" or "name@version"
}

// Duration is EndNs-StartNs (0 when the end is unknown).
func (s *Span) Duration() time.Duration {
	if s.EndNs < s.StartNs {
		return 0
	}
	return time.Duration(s.EndNs - s.StartNs)
}

// Start returns StartNs as a time.Time.
func (s *Span) Start() time.Time { return time.Unix(0, s.StartNs) }

// End returns EndNs as a time.Time.
func (s *Span) End() time.Time { return time.Unix(0, s.EndNs) }

// TraceID is a 128-bit application trace id (W3C, B3 and Jaeger ids fit;
// 64-bit ids are right-aligned). The zero value means none.
type TraceID [16]byte

// IsZero reports whether the id is unset.
func (t TraceID) IsZero() bool { return t == TraceID{} }

// String returns the lower-case hex form, 32 digits, or "" when zero.
func (t TraceID) String() string {
	if t.IsZero() {
		return ""
	}
	return hex.EncodeToString(t[:])
}

// ParseTraceID parses 16 or 32 hex digits (16 are right-aligned).
func ParseTraceID(s string) (TraceID, bool) {
	var t TraceID
	if len(s) != 16 && len(s) != 32 {
		return t, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return t, false
	}
	copy(t[16-len(b):], b)
	return t, !t.IsZero()
}

// Flags carry capture-quality facts about a span.
type Flags uint32

const (
	// FlagPartial: the connection or stream was seen mid-way (no start).
	FlagPartial Flags = 1 << iota
	// FlagTruncated: a message was larger than the captured payload.
	FlagTruncated
	// FlagNoRequest: a response was seen without its request.
	FlagNoRequest
	// FlagReqTIDMismatch: request and response were handled by different threads.
	FlagReqTIDMismatch
	// FlagProxy: the span's process is a sidecar proxy of its pod (istio-proxy,
	// linkerd-proxy, or a process the collector's config names a proxy).
	FlagProxy
	// FlagMultiplexed: another request was in flight on the same connection
	// (pipelining, HTTP/2 streams).
	FlagMultiplexed
	// FlagHandoff: the call was made by another thread (or goroutine) than
	// the one holding its request, and its context id was handed over: a
	// confirmed handoff or a claim (docs/assembly.md "Handoff").
	FlagHandoff
	// FlagTask: the call was made by an asyncio task of an event loop that
	// serves many requests on one thread; its context id is the request its
	// task worked for (docs/assembly.md "Tasks").
	FlagTask
	// FlagCallback: the call was written by a Node.js event loop during the
	// callback that ran its request's handler (or on a connection that
	// callback opened; docs/assembly.md "Node.js").
	FlagCallback
	// FlagTLS: the exchange was TLS on the wire. A packet span of it covers
	// a flight of records each way (req_tcp_seq/request_bytes and
	// resp_tcp_seq/response_bytes are the flights' application records;
	// docs/packet.md "TLS flights"); its L7 fields come from the span that
	// read the plaintext (docs/assembly.md "TLS flights").
	FlagTLS
)

// Has reports whether all bits of f2 are set.
func (f Flags) Has(f2 Flags) bool { return f&f2 == f2 }
