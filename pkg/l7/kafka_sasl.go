package l7

import "strings"

// kafkaSASL follows the SASL exchange of a connection whose client sent
// SaslHandshake version 0: the SASL tokens then travel as bare
// size-prefixed frames, without request or response headers, until the
// exchange ends and requests resume. (From version 1 on they travel in
// SaslAuthenticate requests, whose bytes are not read.) A token is never
// read as a request: PLAIN's carries the password, and a binary one
// (GSSAPI) may look like any request.
type kafkaSASL struct {
	tokens int  // client tokens still to come; -1: unknown, until a plausible request
	open   bool // from the handshake to the first request after it
}

const kafkaSaslHandshake = 17

// request notes a request: a SaslHandshake v0 starts an exchange of as
// many client tokens as its mechanism sends (PLAIN and OAUTHBEARER one,
// SCRAM two); any other request ends one.
func (s *kafkaSASL) request(k *kafkaReq, b []byte) {
	if k.key != kafkaSaslHandshake || k.version != 0 {
		s.open = false
		return
	}
	r := kreader{b: b}
	r.skip(8) // api key, version, correlation id
	r.str()   // client id
	mech := strings.ToUpper(r.str())
	s.open, s.tokens = true, -1
	switch {
	case mech == "PLAIN" || mech == "OAUTHBEARER":
		s.tokens = 1
	case strings.HasPrefix(mech, "SCRAM-"):
		s.tokens = 2
	}
}

// token reports whether the client frame b (size bytes in all) is a SASL
// token to skip.
func (s *kafkaSASL) token(b []byte, size int) bool {
	switch {
	case !s.open || s.tokens == 0:
		return false
	case s.tokens > 0:
		s.tokens--
		return true
	}
	if kafkaHeader(b, size) {
		s.tokens = 0
		return false
	}
	return true
}
