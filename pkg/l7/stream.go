package l7

// StreamParser is a protocol whose messages need connection state to be
// read: HPACK tables (HTTP/2), prepared statements and the database name
// (MySQL, PostgreSQL), the request a response answers (Kafka responses carry
// no api key), or messages made of several frames. The session hands such a
// connection's bytes to one Stream instead of calling Parse per message.
type StreamParser interface {
	Parser
	// NewStream returns the decoder of one connection.
	NewStream() Stream
}

// Stream decodes the two byte streams of one connection.
type Stream interface {
	// Feed consumes the next bytes of one direction in stream order: data
	// is the captured prefix of n real bytes (len(data) <= n); the n-len(data)
	// bytes after it were not captured and are skipped (or, when a frame
	// boundary fell among them, the stream resynchronises on a later chunk
	// and marks what it lost). response tells the direction: true for bytes
	// sent by the server.
	//
	// Every message that ends within these bytes is passed to emit, in
	// order, with Offset and Length set; emit must not retain m.
	Feed(data []byte, n int, response bool, emit func(m *Message))
}

// Resyncer is a Stream that can be told bytes of a direction were lost
// without their count (a TLS read whose call was not seen): it drops the
// message it was reading there and waits for a chunk that starts one.
type Resyncer interface {
	Resync(response bool)
}

// Skipper is a Stream that can tell how many of a direction's next bytes
// it will count without reading them (a value's payload it keeps nothing
// of): the capture may send those without their bytes (collector/session
// Config.Body), as it does an HTTP/1 body of known length.
type Skipper interface {
	Skippable(response bool) int
}
