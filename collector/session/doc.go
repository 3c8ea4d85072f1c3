// Package session turns the captured chunks of one connection into spans:
// it finds L7 messages (pkg/l7), pairs requests with responses (keep-alive,
// pipelining, bodies larger than the capture, chunked bodies), times out
// requests without response and fills every span field a connection knows.
// The eBPF capture feeds it one chunk per syscall.
package session
