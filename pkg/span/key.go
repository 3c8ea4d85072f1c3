package span

// KeyKind names a correlation-key family. Stores index every non-zero key of
// a span under its kind; the assembler looks spans up by them.
type KeyKind uint8

const (
	KeyInvalid KeyKind = iota
	// KeyReqTCPSeq: U is req_tcp_seq.
	KeyReqTCPSeq
	// KeyRespTCPSeq: U is resp_tcp_seq.
	KeyRespTCPSeq
	// KeySyscallTraceID: U is syscall_trace_id_req or syscall_trace_id_resp.
	KeySyscallTraceID
	// KeyXRequestID: S is x_request_id_req or x_request_id_resp.
	KeyXRequestID
	// KeyTraceID: T is trace_id.
	KeyTraceID
	// KeyAppSpanID: U is app_span_id or parent_span_id (app-propagated ids).
	KeyAppSpanID
	// KeyProcess: U is FNV-1a 32 of the node << 32 | server bit << 31 |
	// pid, for eBPF spans: the server requests, or the calls, of one process
	// (the containment relation, pkg/trace). Not a correlation key: Keys
	// leaves it out, IndexKeys adds it.
	KeyProcess
)

var keyKindNames = [...]string{"", "req_tcp_seq", "resp_tcp_seq", "syscall_trace_id", "x_request_id", "trace_id", "app_span_id", "process"}

func (k KeyKind) String() string { return enumName(keyKindNames[:], int(k)) }

// Key is one correlation-key value. It is comparable, so it can key a map.
type Key struct {
	Kind KeyKind
	U    uint64  // numeric keys
	S    string  // x-request-id
	T    TraceID // trace id
}

// Keys appends every non-zero correlation key of s to dst. A value shared by
// the request and the response side (an x-request-id echoed back, say) is
// appended once. pkg/store's indexer writes the same keys without this
// slice (indexer.appendRecords; TestAppendRecordsAsIndexKeys): a key
// added here is added there.
func (s *Span) Keys(dst []Key) []Key {
	if s.ReqTCPSeq != 0 {
		dst = append(dst, Key{Kind: KeyReqTCPSeq, U: uint64(s.ReqTCPSeq)})
	}
	if s.RespTCPSeq != 0 {
		dst = append(dst, Key{Kind: KeyRespTCPSeq, U: uint64(s.RespTCPSeq)})
	}
	if s.SyscallTraceIDReq != 0 {
		dst = append(dst, Key{Kind: KeySyscallTraceID, U: s.SyscallTraceIDReq})
	}
	if s.SyscallTraceIDResp != 0 && s.SyscallTraceIDResp != s.SyscallTraceIDReq {
		dst = append(dst, Key{Kind: KeySyscallTraceID, U: s.SyscallTraceIDResp})
	}
	if s.XRequestIDReq != "" {
		dst = append(dst, Key{Kind: KeyXRequestID, S: s.XRequestIDReq})
	}
	if s.XRequestIDResp != "" && s.XRequestIDResp != s.XRequestIDReq {
		dst = append(dst, Key{Kind: KeyXRequestID, S: s.XRequestIDResp})
	}
	if !s.TraceID.IsZero() {
		dst = append(dst, Key{Kind: KeyTraceID, T: s.TraceID})
	}
	if s.AppSpanID != 0 {
		dst = append(dst, Key{Kind: KeyAppSpanID, U: s.AppSpanID})
	}
	if s.ParentSpanID != 0 && s.ParentSpanID != s.AppSpanID {
		dst = append(dst, Key{Kind: KeyAppSpanID, U: s.ParentSpanID})
	}
	return dst
}

// ProcessKey is the KeyProcess key of a node's process: of its server
// requests (s-p spans) or of its calls (every other eBPF span).
func ProcessKey(node string, pid uint32, server bool) Key {
	return Key{Kind: KeyProcess, U: ProcessValue(NodeHash(node), pid, server)}
}

// NodeHash is the node's part of a KeyProcess value: FNV-1a 32 of its
// name (hash/fnv's New32a, without its allocations). A store writing many
// spans of one node keeps it (ProcessValue).
func NodeHash(node string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(node); i++ {
		h ^= uint32(node[i])
		h *= 16777619
	}
	return h
}

// ProcessValue is the KeyProcess value of a process of the node whose
// NodeHash is node.
func ProcessValue(node, pid uint32, server bool) uint64 {
	u := uint64(node)<<32 | uint64(pid&0x7fff_ffff)
	if server {
		u |= 1 << 31
	}
	return u
}

// IndexKeys appends what a store indexes s under: its correlation keys and,
// for an eBPF span, its process.
func (s *Span) IndexKeys(dst []Key) []Key {
	dst = s.Keys(dst)
	if s.SignalSource == SourceEBPF && s.PID != 0 {
		dst = append(dst, ProcessKey(s.Node, s.PID, s.TapSide == TapServerProcess))
	}
	return dst
}
