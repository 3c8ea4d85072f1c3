// Package l4flight makes L4 spans of the TLS connections whose plaintext
// the collector does not read: a process excluded from TLS reading
// (tls.exclude_processes) or whose TLS library has no probes (Envoy's
// stripped BoringSSL, rustls). The kernel sends such a connection's
// syscalls as metadata with their record header (bpf/socket/opaque.h); a
// Flow cuts them into flights (a change of direction ends one) and makes
// one span per request flight and the response flight after it, with their
// TCP sequence ranges, the tls flag and no L7 fields (docs/mesh.md "Without
// plaintext").
package l4flight
