// Package tlsrecord follows the TLS records of a TCP connection seen on the
// wire, without decrypting and without allocating: record headers (content
// type 20–23, version 0x0301–0x0304, length at most 2^14+2048) found across
// segments — a header or a body split over segments, several records in one
// segment, retransmitted and lost bytes — and the flights they form (the
// records one side sends until the other side sends one), paired into
// request/response exchanges of application data (docs/packet.md, "TLS
// flights").
package tlsrecord
