package tlsrecord

// Dir is a direction of the connection.
type Dir uint8

const (
	ToServer Dir = iota // sent by the client (the side that sent the ClientHello)
	ToClient            // sent by the server
)

// Flight is the records one side sent until the other side sent one.
type Flight struct {
	Dir            Dir
	Seq            uint32 // first byte of its first record
	Bytes          int    // from Seq to the end of its last record
	Records        int
	Types          uint8 // bit t-20 set for each content type t seen
	StartNs, EndNs int64 // first and last segment that carried its bytes
	// The application part: from the first record that carries application
	// data (not a handshake, change-cipher-spec or alert record, nor a TLS
	// 1.3 handshake record sent as application data) to the end.
	AppSeq     uint32
	AppBytes   int
	AppRecords int
	Lost       bool // bytes of it were not seen
}

// End is the sequence number after its last record.
func (f *Flight) End() uint32 { return f.Seq + uint32(f.Bytes) }

// Exchange is a request flight of application data and the response flight
// that answered it.
type Exchange struct{ Request, Response Flight }

// Flow follows one TLS connection from its ClientHello. Feed it every
// segment with payload, in capture order; it returns each exchange when its
// response flight ends (the client sends again, Idle or Flush).
type Flow struct {
	dir     [2]reader
	cur     Flight
	open    bool
	flights uint64 // flights started
	seg     uint64 // segments fed
	now     int64
	feeding Dir
	// Handshake. A server whose ServerHello flight also carries
	// application-data records speaks TLS 1.3 (its handshake is encrypted);
	// the client's next application-data records, up to the end of the write
	// that carries them (PSH), are its Finished (and certificate), not a
	// request.
	shFlight    uint64 // the flight with the ServerHello (0: none yet)
	hsPending   bool   // TLS 1.3: the client's Finished is still to come
	hsUntilPush bool   // TLS 1.3: the client's Finished write is going on
	appSeen     bool   // an application-data record was seen
	pending     Flight // a request flight awaiting its response
	hasPending  bool
	out         Exchange
	outOK       bool
	Stats       Stats
}

// Stats count what a flow saw.
type Stats struct {
	Records, Flights, Exchanges uint64
	NotTLS                      uint64 // segments where a record header had to start and none did
	Unanswered                  uint64 // request flights with no response flight
	Unasked                     uint64 // application flights of the server with no request (TLS 1.3 session tickets)
}

// Feed consumes one segment of direction d with payload p, captured at tsNs;
// push: it had PSH (the end of a write). It returns the exchange a change of
// direction completed, if any.
func (f *Flow) Feed(d Dir, seq uint32, p []byte, push bool, tsNs int64) (Exchange, bool) {
	if len(p) == 0 || d > ToClient {
		return Exchange{}, false
	}
	f.seg++
	f.now, f.feeding, f.outOK = tsNs, d, false
	r := &f.dir[d]
	if err := r.feed(seq, p, f.seg, (*flowSink)(f)); err != nil {
		f.Stats.NotTLS++
	}
	if f.open && f.cur.Dir == d {
		f.cur.EndNs = tsNs
		f.cur.Lost = f.cur.Lost || r.lost
		r.lost = false
	}
	if d == ToServer && push {
		f.hsUntilPush = false
	}
	return f.out, f.outOK
}

// flowSink receives the records of Flow's readers (a named type keeps the
// method off Flow's exported API).
type flowSink Flow

func (s *flowSink) record(r Record) { (*Flow)(s).add(r) }

// add places a record of the direction being fed in its flight.
func (f *Flow) add(r Record) {
	d := f.feeding
	f.Stats.Records++
	first := !f.open || f.cur.Dir != d
	if first {
		f.end()
		f.flights++
		f.cur = Flight{Dir: d, Seq: r.Seq, StartNs: f.now, EndNs: f.now}
		f.open = true
	}
	app := r.Type == TypeApplicationData
	switch {
	case d == ToClient && first && r.Type == TypeHandshake && r.HasFirst && r.First == 2 && !f.appSeen:
		f.shFlight = f.flights // a ServerHello (or a HelloRetryRequest) opens its flight
	case d == ToClient && app && f.shFlight == f.flights:
		f.hsPending = true // TLS 1.3: the encrypted handshake in the ServerHello flight
		app = false
	case d == ToServer && app && f.hsPending:
		f.hsPending, f.hsUntilPush = false, true
		app = false
	case d == ToServer && app && f.hsUntilPush:
		app = false
	}
	f.cur.Records++
	f.cur.Types |= 1 << (r.Type - TypeChangeCipherSpec)
	f.cur.Bytes = int(r.Seq + uint32(r.Len) - f.cur.Seq)
	if app {
		f.appSeen = true
		if f.cur.AppRecords == 0 {
			f.cur.AppSeq = r.Seq
		}
		f.cur.AppRecords++
		f.cur.AppBytes = int(r.Seq + uint32(r.Len) - f.cur.AppSeq)
	}
}

// end closes the open flight: a request flight waits for its response; a
// response flight completes the exchange.
func (f *Flow) end() {
	if !f.open {
		return
	}
	f.open = false
	f.Stats.Flights++
	fl := f.cur
	if fl.AppRecords == 0 {
		return // handshake, change cipher spec, alerts
	}
	if fl.Dir == ToServer {
		if f.hasPending {
			f.Stats.Unanswered++
		}
		f.pending, f.hasPending = fl, true
		return
	}
	if !f.hasPending {
		f.Stats.Unasked++
		return
	}
	f.out, f.outOK = Exchange{Request: f.pending, Response: fl}, true
	f.hasPending = false
	f.Stats.Exchanges++
}

// Idle ends the open flight when nothing was fed for it since after before
// now, and returns the exchange that completes.
func (f *Flow) Idle(now, after int64) (Exchange, bool) {
	if !f.open || now-f.cur.EndNs < after {
		return Exchange{}, false
	}
	f.outOK = false
	f.end()
	return f.out, f.outOK
}

// Flush ends the open flight (the connection closed) and returns the
// exchange that completes; a request still unanswered is counted and
// dropped.
func (f *Flow) Flush() (Exchange, bool) {
	f.outOK = false
	f.end()
	if f.hasPending {
		f.Stats.Unanswered++
		f.hasPending = false
	}
	return f.out, f.outOK
}
