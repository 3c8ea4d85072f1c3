// Package gotls reads what the Go crypto/tls uprobes need from a Go
// executable's bytes (docs/tls-go.md): the Go version (its
// build information), the file offsets of (*crypto/tls.Conn).Write and
// Read and of every RET instruction inside them (results are read there:
// a uretprobe rewrites the return address on a goroutine stack the runtime
// may move), and the struct offsets that lead from a *tls.Conn to the
// socket's file descriptor (tls.Conn.conn, a net.Conn interface holding a
// *net.TCPConn -> conn.fd *netFD -> netFD.pfd poll.FD -> FD.Sysfd).
//
// Symbols come from the ELF symbol table or, in a stripped binary
// (-ldflags='-s -w'), from the pclntab the Go runtime itself needs. The
// file is untrusted input: every failure is an error naming what was
// wrong, never a panic, and an unknown Go version is refused rather than
// guessed (ErrUnknownLayout).
package gotls
