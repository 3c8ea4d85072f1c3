package l7

import (
	"errors"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Message is what a parser reads from the head of one request or response.
type Message struct {
	Response bool
	Protocol span.L7Protocol
	Version  string
	Method   string // request
	Host     string // request
	Path     string // request, truncated to MaxPath
	Status   int    // response code (HTTP status)
	Reason   string // response reason phrase or error message

	// RespStatus, when set, is the response's status class as the protocol
	// defines it (protocols without HTTP-like codes).
	RespStatus span.ResponseStatus

	XRequestID   string
	TraceID      span.TraceID
	ParentSpanID uint64 // from traceparent / b3 / uber-trace-id: the caller's span
	KeepAlive    bool
	// StreamID pairs a response with its request in protocols that carry an
	// id (DNS id; HTTP/2 stream; Kafka correlation id). 0: pair in order.
	StreamID uint32
	// Answers is the number of records in a reply (DNS).
	Answers int
	// Rows is the count a reply reports: rows affected or returned (SQL).
	Rows int64
	// Database is the connection's database (SQL), set on requests.
	Database string

	// Offset is where the message starts in its direction's byte stream
	// and Length its size (Stream decoders only).
	Offset, Length int64
	// Partial: the message (or its stream) was seen mid-way, so some of its
	// fields may be missing. Truncated: bytes of it were not captured.
	Partial, Truncated bool

	// HeaderLen is the length of the head (start line and headers).
	HeaderLen int
	// BodyLen is the body length when known (-1: until the connection closes
	// or, with Chunked, until the last chunk).
	BodyLen int
	Chunked bool
	NoBody  bool // HEAD responses, 1xx, 204, 304
}

// Total is the message length when known, else -1.
func (m *Message) Total() int {
	switch {
	case m.NoBody:
		return m.HeaderLen
	case m.Chunked || m.BodyLen < 0:
		return -1
	}
	return m.HeaderLen + m.BodyLen
}

// Errors of the parsers. ErrIncomplete means the head is not entirely in the
// captured bytes: the fields read so far are still returned.
var (
	ErrNotMessage = errors.New("l7: not the start of a message")
	ErrIncomplete = errors.New("l7: message head incomplete in the captured bytes")
	ErrMalformed  = errors.New("l7: malformed message")
)

// MaxPath bounds the stored resource.
const MaxPath = 512

// Parser is one protocol. Detect is cheap and says whether b starts a
// message of the protocol; Parse reads the head.
type Parser interface {
	Protocol() span.L7Protocol
	Detect(b []byte) bool
	Parse(b []byte, m *Message) error
}

// Parsers are the known protocols in detection order.
var Parsers = []Parser{HTTP2{}, HTTP1{}, Redis{}, MySQL{}, PostgreSQL{}, Kafka{}}

// UDPParsers are the protocols of datagram sockets, one message per datagram.
var UDPParsers = []Parser{DNS{}}

// DetectUDP returns the parser of the datagram b, or nil.
func DetectUDP(b []byte) Parser {
	for _, p := range UDPParsers {
		if p.Detect(b) {
			return p
		}
	}
	return nil
}

// DirParser is a Parser that is told whether b is a request or a response
// (protocols whose messages look alike both ways).
type DirParser interface {
	ParseDir(b []byte, response bool, m *Message) error
}

// Detect returns the parser of the message starting in b, or nil.
func Detect(b []byte) Parser {
	for _, p := range Parsers {
		if p.Detect(b) {
			return p
		}
	}
	return nil
}
