// Package repeat counts correlation keys that repeat: an X-Request-ID or an
// application trace id carried by more exchanges at one observation point,
// within a window, than one request makes there. Batch jobs and retry loops
// reuse one correlation id, gateways set constants, and a client may send a
// fixed traceparent; such a key joins requests that have nothing else in
// common.
//
// An exchange is a request a server received, counted at its observation
// point: the process (eBPF s-p spans) or the capture interface and tap side
// (packet s and s-nd spans). A key is repeated when one point saw it on more
// than Bound.Exchanges exchanges within Bound.Window. The collector counts
// repeated keys as spans pass (Counter, exported on /metrics); trace
// assembly counts them among the spans it looked up (Most) and names them on
// the trace (docs/assembly.md "Reused ids").
package repeat
