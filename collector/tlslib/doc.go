// Package tlslib finds the TLS libraries a process runs, so the collector
// can attach the plaintext uprobes to them (bpf/socket/openssl.h,
// docs/tls.md): the shared libssl files in its memory map and an
// executable that carries OpenSSL and exports its functions (Node.js), and
// in such a file the offsets of SSL_write, SSL_read, SSL_write_ex,
// SSL_read_ex and SSL_set_fd.
package tlslib
