// Package causality decides which processes' thread contexts can be trusted.
//
// The BPF programs (bpf/socket/causality.h) give a call the context id of the
// server request its thread holds. That is exact for thread-per-request
// services and wrong for runtimes that run many requests on one thread in
// turn: Go's scheduler moves goroutines between threads, and async runtimes
// resume a request on whichever thread is free. A Guard removes the context
// ids of such processes' spans, so that a wrong link cannot be made; the
// trace assembler then falls back to headers and containment
// (docs/assembly.md). It also removes them from server requests that shared
// a connection with another request in flight (pipelining, HTTP/2 streams),
// whose context id the kernel cannot tell apart.
package causality
