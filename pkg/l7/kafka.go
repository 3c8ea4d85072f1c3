package l7

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Kafka reads the Kafka wire protocol: size-prefixed requests with api key,
// version and correlation id, and responses that carry only the
// correlation id — the stream remembers each request's api key and version
// to read its response (error codes of Produce, Fetch and ApiVersions).
// Pairing is by correlation id.
type Kafka struct{}

const (
	kafkaMaxSize    = 100 << 20
	kafkaKeep       = 4096
	kafkaMaxPending = 256
)

// kafkaAPIs names the api keys and gives the first flexible version (-1:
// never flexible).
var kafkaAPIs = [...]struct {
	name     string
	flexible int16
}{
	{"Produce", 9}, {"Fetch", 12}, {"ListOffsets", 6}, {"Metadata", 9}, {"LeaderAndIsr", 4}, {"StopReplica", 2},
	{"UpdateMetadata", 6}, {"ControlledShutdown", 3}, {"OffsetCommit", 8}, {"OffsetFetch", 6}, {"FindCoordinator", 3},
	{"JoinGroup", 6}, {"Heartbeat", 4}, {"LeaveGroup", 4}, {"SyncGroup", 4}, {"DescribeGroups", 5}, {"ListGroups", 3},
	{"SaslHandshake", -1}, {"ApiVersions", 3}, {"CreateTopics", 5}, {"DeleteTopics", 4}, {"DeleteRecords", 2},
	{"InitProducerId", 2}, {"OffsetForLeaderEpoch", 4}, {"AddPartitionsToTxn", 3}, {"AddOffsetsToTxn", 3},
	{"EndTxn", 3}, {"WriteTxnMarkers", 1}, {"TxnOffsetCommit", 3}, {"DescribeAcls", 2}, {"CreateAcls", 2},
	{"DeleteAcls", 2}, {"DescribeConfigs", 4}, {"AlterConfigs", 2}, {"AlterReplicaLogDirs", 2},
	{"DescribeLogDirs", 2}, {"SaslAuthenticate", 2}, {"CreatePartitions", 2}, {"CreateDelegationToken", 2},
	{"RenewDelegationToken", 2}, {"ExpireDelegationToken", 2}, {"DescribeDelegationToken", 2},
	{"DeleteGroups", 2}, {"ElectLeaders", 2}, {"IncrementalAlterConfigs", 1}, {"AlterPartitionReassignments", 0},
	{"ListPartitionReassignments", 0}, {"OffsetDelete", -1}, {"DescribeClientQuotas", 1}, {"AlterClientQuotas", 1},
}

func kafkaAPI(key int16) (string, bool) {
	if key >= 0 && int(key) < len(kafkaAPIs) {
		return kafkaAPIs[key].name, true
	}
	if key >= 0 && key <= 80 {
		return "api-" + strconv.Itoa(int(key)), true
	}
	return "", false
}

// kafkaFlexible reports whether the version uses compact encodings and
// tagged fields (api keys past the table are flexible from version 0).
func kafkaFlexible(key, version int16) bool {
	if key >= 0 && int(key) < len(kafkaAPIs) {
		f := kafkaAPIs[key].flexible
		return f >= 0 && version >= f
	}
	return true
}

func (Kafka) Protocol() span.L7Protocol { return span.L7Kafka }

// Detect recognises a request: a plausible size, a known api key, a
// version up to 20 and a printable client id.
func (Kafka) Detect(b []byte) bool {
	if len(b) < 14 {
		return false
	}
	size := int(binary.BigEndian.Uint32(b))
	if size < 10 || size > kafkaMaxSize || !(size+4 == len(b) || size+4 > len(b) && len(b) >= 512) {
		return false
	}
	return kafkaHeader(b[4:], size)
}

// kafkaHeader reports whether b, the bytes of a request after its size
// (size of them in all), starts with a plausible header: a known api key,
// a version up to 20, a null or printable client id.
func kafkaHeader(b []byte, size int) bool {
	if len(b) < 10 {
		return false
	}
	key, ver := int16(binary.BigEndian.Uint16(b)), int16(binary.BigEndian.Uint16(b[2:]))
	if _, ok := kafkaAPI(key); !ok || ver < 0 || ver > 20 {
		return false
	}
	cl := int(int16(binary.BigEndian.Uint16(b[8:])))
	if cl == -1 {
		return true
	}
	if cl < 1 || cl > 256 || 10+cl > len(b) || 10+cl > size {
		return false
	}
	for _, c := range b[10 : 10+cl] {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// Parse reads a request header (responses cannot be told apart alone).
func (Kafka) Parse(b []byte, m *Message) error {
	*m = Message{Protocol: span.L7Kafka}
	if !(Kafka{}).Detect(b) {
		return ErrNotMessage
	}
	size := int(binary.BigEndian.Uint32(b))
	m.HeaderLen = 4 + size
	var k kafkaReq
	kafkaRequest(b[4:min(len(b), 4+size)], m, &k)
	if len(b) < 4+size {
		return ErrIncomplete
	}
	return nil
}

// kafkaReq is what a response needs of its request.
type kafkaReq struct {
	key, version int16
}

// kafkaRequest reads a request header and, for Produce, Fetch and
// Metadata, the first topic.
func kafkaRequest(b []byte, m *Message, k *kafkaReq) bool {
	r := kreader{b: b}
	k.key, k.version = r.i16(), r.i16()
	corr := r.i32()
	r.str() // client id: a nullable string even in flexible headers
	name, known := kafkaAPI(k.key)
	if r.bad || !known || k.version < 0 {
		return false
	}
	flex := kafkaFlexible(k.key, k.version)
	if flex {
		r.tags()
	}
	m.Method = name
	m.Version = strconv.Itoa(int(k.version))
	m.StreamID = uint32(corr)
	r.flex = flex
	switch k.key {
	case 0: // Produce
		if k.version >= 3 {
			r.str() // transactional id
		}
		r.skip(6) // acks, timeout
		if r.array() > 0 {
			if k.version >= 13 { // topics by id (KIP-516)
				m.Path = "topic-id:" + hex.EncodeToString(r.bytes(16))
			} else {
				m.Path = r.str()
			}
		}
	case 1: // Fetch
		if k.version < 15 {
			r.skip(4) // replica id
		}
		r.skip(8) // max wait, min bytes
		if k.version >= 3 {
			r.skip(4)
		}
		if k.version >= 4 {
			r.skip(1)
		}
		if k.version >= 7 {
			r.skip(8)
		}
		if r.array() > 0 {
			if k.version >= 13 {
				m.Path = "topic-id:" + hex.EncodeToString(r.bytes(16))
			} else {
				m.Path = r.str()
			}
		}
	case 3: // Metadata
		if n := r.array(); n > 0 {
			if k.version >= 10 {
				r.skip(16) // topic id
			}
			m.Path = r.str()
		}
	}
	if len(m.Path) > MaxPath {
		m.Path = m.Path[:MaxPath]
	}
	return true
}

// kafkaResponse reads a response's correlation id and, knowing its
// request, the first non-zero error code.
func kafkaResponse(b []byte, m *Message, k *kafkaReq) {
	r := kreader{b: b}
	m.StreamID = uint32(r.i32())
	if k == nil {
		return
	}
	flex := kafkaFlexible(k.key, k.version)
	if flex && k.key != 18 { // ApiVersions responses keep header v0
		r.tags()
	}
	r.flex = flex
	code := int16(0)
	switch k.key {
	case 0: // Produce: topics[name, partitions[index, error_code, ...]]
		for t, nt := 0, r.array(); t < nt && code == 0 && !r.bad; t++ {
			if k.version >= 13 {
				r.skip(16)
			} else {
				r.str()
			}
			for p, np := 0, r.array(); p < np && !r.bad; p++ {
				r.skip(4)
				if c := r.i16(); c != 0 && code == 0 {
					code = c
				}
				r.skip(8) // base offset
				if k.version >= 2 {
					r.skip(8)
				}
				if k.version >= 5 {
					r.skip(8)
				}
				if k.version >= 8 {
					for e, ne := 0, r.array(); e < ne && !r.bad; e++ {
						r.skip(4)
						r.str()
						r.tagsIfFlex()
					}
					r.str()
				}
				r.tagsIfFlex()
			}
			r.tagsIfFlex()
		}
	case 1: // Fetch: throttle, error_code, session, responses[topic, partitions[index, error_code, ...]]
		if k.version >= 1 {
			r.skip(4)
		}
		if k.version >= 7 {
			code = r.i16()
			r.skip(4)
		}
		if code == 0 && r.array() > 0 {
			if k.version >= 13 {
				r.skip(16)
			} else {
				r.str()
			}
			if r.array() > 0 {
				r.skip(4)
				code = r.i16()
			}
		}
	case 18: // ApiVersions
		code = r.i16()
	}
	if r.bad {
		code = 0
	}
	m.Status = int(code)
	m.RespStatus = KafkaStatus(code)
	if code != 0 {
		m.Reason = kafkaErrName(code)
	}
}

// KafkaStatus maps a Kafka error code: the client's mistakes (unknown
// topics, invalid arguments, authorization, unsupported versions) are
// client errors, the broker's state and failures server errors.
func KafkaStatus(code int16) span.ResponseStatus {
	switch code {
	case 0:
		return span.StatusOK
	case 2, 3, 4, 10, 12, 16, 17, 18, 21, 22, 25, 26, 27, 28, 29, 30, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42,
		43, 44, 45, 47, 48, 49, 53, 58, 69, 73, 74, 87:
		return span.StatusClientError
	}
	return span.StatusServerError
}

var kafkaErrNames = map[int16]string{
	-1: "UNKNOWN_SERVER_ERROR", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE", 3: "UNKNOWN_TOPIC_OR_PARTITION",
	4: "INVALID_FETCH_SIZE", 5: "LEADER_NOT_AVAILABLE", 6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT",
	8: "BROKER_NOT_AVAILABLE", 9: "REPLICA_NOT_AVAILABLE", 10: "MESSAGE_TOO_LARGE", 13: "NETWORK_EXCEPTION",
	14: "COORDINATOR_LOAD_IN_PROGRESS", 15: "COORDINATOR_NOT_AVAILABLE", 16: "NOT_COORDINATOR",
	17: "INVALID_TOPIC_EXCEPTION", 18: "RECORD_LIST_TOO_LARGE", 19: "NOT_ENOUGH_REPLICAS",
	20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND", 21: "INVALID_REQUIRED_ACKS", 22: "ILLEGAL_GENERATION",
	25: "UNKNOWN_MEMBER_ID", 27: "REBALANCE_IN_PROGRESS", 29: "TOPIC_AUTHORIZATION_FAILED",
	30: "GROUP_AUTHORIZATION_FAILED", 31: "CLUSTER_AUTHORIZATION_FAILED", 35: "UNSUPPORTED_VERSION",
	36: "TOPIC_ALREADY_EXISTS", 37: "INVALID_PARTITIONS", 42: "INVALID_REQUEST", 87: "INVALID_RECORD",
}

func kafkaErrName(code int16) string {
	if n, ok := kafkaErrNames[code]; ok {
		return n
	}
	return "error " + strconv.Itoa(int(code))
}

// kreader reads Kafka encodings; a short read sets bad and yields zeros.
type kreader struct {
	b    []byte
	bad  bool
	flex bool // compact strings and arrays
}

func (r *kreader) take(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *kreader) skip(n int)         { r.take(n) }
func (r *kreader) bytes(n int) []byte { return r.take(n) }

func (r *kreader) i16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *kreader) i32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *kreader) uvarint() int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<30 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

// str reads a (nullable) string, compact when flexible.
func (r *kreader) str() string {
	var n int
	if r.flex {
		n = r.uvarint() - 1
	} else {
		n = int(r.i16())
	}
	if n <= 0 || r.bad {
		return ""
	}
	return string(r.take(n))
}

// array reads an array length (compact when flexible); -1 (null) is 0. A
// short read yields 0 (and sets bad).
func (r *kreader) array() int {
	if r.flex {
		return max(0, min(r.uvarint()-1, 1<<16))
	}
	return max(0, min(int(r.i32()), 1<<16))
}

// tags skips a tagged-field section.
func (r *kreader) tags() {
	for n := r.uvarint(); n > 0 && !r.bad; n-- {
		r.uvarint()
		r.skip(r.uvarint())
	}
}

func (r *kreader) tagsIfFlex() {
	if r.flex {
		r.tags()
	}
}

type kafkaConn struct {
	dir   [2]framer          // size-prefixed frames each way
	reqs  map[int32]kafkaReq // by correlation id, awaiting a response
	order []int32
	// sasl is the SASL exchange after a SaslHandshake v0: its tokens
	// (PLAIN's holds the password) are bare size-prefixed frames, not
	// requests, and are skipped (kafka_sasl.go).
	sasl kafkaSASL
	emit func(*Message)
}

// NewStream returns the decoder of one connection.
func (Kafka) NewStream() Stream {
	return &kafkaConn{reqs: map[int32]kafkaReq{}, dir: [2]framer{fromStart(0, 4, kafkaKeep), fromStart(1, 4, kafkaKeep)}}
}

// Skippable tells the capture the rest of a request's or response's body
// past the head it keeps (l7.Skipper).
func (c *kafkaConn) Skippable(response bool) int { return c.dir[dirIndex(response)].Skippable() }

// Feed implements Stream.
func (c *kafkaConn) Feed(data []byte, n int, response bool, emit func(*Message)) {
	c.emit = emit
	c.dir[dirIndex(response)].feed(data, n, c)
}

// sync picks up the client at a plausible request, the server at a
// response to a request awaiting one.
func (c *kafkaConn) sync(f *framer, data []byte, _ int64) bool {
	if !f.response && (Kafka{}).Detect(data) {
		return true
	}
	if !f.response || len(data) < 8 || binary.BigEndian.Uint32(data) > kafkaMaxSize {
		return false
	}
	_, ok := c.reqs[int32(binary.BigEndian.Uint32(data[4:]))]
	return ok
}

func (*kafkaConn) frame(_ *framer, hdr []byte) (int, bool) {
	size := int(binary.BigEndian.Uint32(hdr))
	return size, size <= kafkaMaxSize
}

func (c *kafkaConn) end(f *framer) { c.message(f, f.response) }

func (c *kafkaConn) message(d *framer, response bool) {
	m := Message{Protocol: span.L7Kafka, Response: response, Offset: d.start, Length: d.size(), Truncated: d.lost}
	if !response {
		if c.sasl.token(d.buf, d.body) {
			return
		}
		var k kafkaReq
		if !kafkaRequest(d.buf, &m, &k) {
			return
		}
		c.sasl.request(&k, d.buf)
		corr := int32(m.StreamID)
		if len(c.order) >= kafkaMaxPending {
			delete(c.reqs, c.order[0])
			c.order = c.order[1:]
		}
		c.reqs[corr] = k
		c.order = append(c.order, corr)
		c.emit(&m)
		return
	}
	if len(d.buf) < 4 {
		return
	}
	corr := int32(binary.BigEndian.Uint32(d.buf))
	k, ok := c.reqs[corr]
	if ok {
		delete(c.reqs, corr)
		for i, o := range c.order {
			if o == corr {
				c.order = append(c.order[:i], c.order[i+1:]...)
				break
			}
		}
		kafkaResponse(d.buf, &m, &k)
	} else {
		if c.sasl.open {
			return // the broker's SASL token
		}
		kafkaResponse(d.buf, &m, nil)
		m.Partial = true
	}
	c.emit(&m)
}
