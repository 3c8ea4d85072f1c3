package trace

import "github.com/zerotrace/zerotrace/pkg/span"

// Read-ahead (docs/assembly.md "TLS read-ahead"). A TLS library's plaintext
// span carries the TCP sequence number of the ciphertext that carried it:
// exact for a write (the first write's first byte), the start of the read
// syscall for a read. A library that reads ahead (nginx turns OpenSSL's
// read_ahead on) reads all the records waiting in one syscall: the
// handshake's last records before a request (Finished), the session tickets
// before a response. Its number then lies a little before the writer's, on
// the same connection. Two plaintext spans of one connection, a client's
// and a server's, are the same exchange when each reader's number is at or
// before the writer's, by less than a read-ahead buffer, both ways: the
// reader of message k read nothing of message k+1 (HTTP/1.1 sends the next
// request after the response), so its number lies after message k-1's
// start; the request side rules out the earlier exchanges, the response
// side the later ones. Multiplexed connections are left out (several
// messages per read).

// readAheadMax bounds how far a reader's read may start before the record
// it decrypted: OpenSSL's read-ahead buffer is one maximal record (16 KiB
// of plaintext plus expansion); twice that is still far below a message.
const readAheadMax = 1 << 15

// tlsPlain: a TLS library's plaintext span.
func tlsPlain(s *span.Span) bool {
	return s.Flags&span.FlagsTLSLibrary != 0 && s.SignalSource != span.SourcePacket
}

// readAhead: a and b are the client's and the server's plaintext spans of
// one exchange whose readers read ahead (see above).
func readAhead(a, b *span.Span) bool {
	if !tlsPlain(a) || !tlsPlain(b) || a.Flags.Has(span.FlagMultiplexed) || b.Flags.Has(span.FlagMultiplexed) {
		return false
	}
	if b.TapSide == span.TapClientProcess {
		a, b = b, a
	}
	if a.TapSide != span.TapClientProcess || b.TapSide != span.TapServerProcess || !sameConnection(a, b) {
		return false
	}
	if a.ReqTCPSeq == 0 || b.ReqTCPSeq == 0 || a.RespTCPSeq == 0 || b.RespTCPSeq == 0 {
		return false
	}
	// Request: the client wrote, the server read; response: the reverse.
	return a.ReqTCPSeq-b.ReqTCPSeq < readAheadMax && b.RespTCPSeq-a.RespTCPSeq < readAheadMax
}

// unionReadAhead joins the network sets of the client's and the server's
// plaintext spans of one exchange whose numbers differ by read-ahead
// (equal numbers are joined already).
func (l *linker) unionReadAhead() {
	for i := range l.spans {
		if !tlsPlain(l.spans[i]) || l.spans[i].TapSide != span.TapClientProcess {
			continue
		}
		for j := range l.spans {
			if i != j && l.spans[i].ReqTCPSeq != l.spans[j].ReqTCPSeq && readAhead(l.spans[i], l.spans[j]) && tcpRelated(l.cfg, l.spans[i], l.spans[j]) {
				l.set[l.find(i)] = l.find(j)
			}
		}
	}
}
