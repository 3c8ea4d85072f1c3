package l7

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/zerotrace/zerotrace/internal/kafkawire"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// kafkaProduceV7 is an annotated Produce request (version 7, header v1).
var kafkaProduceV7 = unhexDNS(`
	00000027             // size 39
	0000 0007            // api key 0 (Produce), version 7
	00000005             // correlation id 5
	0005 6b676f2d31      // client id "kgo-1"
	ffff                 // transactional id: null
	0001 00002710        // acks 1, timeout 10000 ms
	00000001             // 1 topic
	0006 6f7264657273    // "orders"
	00000000             // 0 partitions (records abridged)
`)

// kafkaProduceV7Err answers it: partition 0, UNKNOWN_TOPIC_OR_PARTITION.
var kafkaProduceV7Err = unhexDNS(`
	00000036             // size 54
	00000005             // correlation id 5
	00000001             // 1 topic
	0006 6f7264657273    // "orders"
	00000001             // 1 partition
	00000000 0003        // index 0, error code 3
	ffffffffffffffff     // base offset -1
	ffffffffffffffff     // log append time -1
	0000000000000000     // log start offset 0
	00000000             // throttle time
`)

var kreq, kresp = kafkawire.Request, kafkawire.Response

func kafkaConversation() [][2][]byte {
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	avr := kmsg.NewPtrApiVersionsResponse()
	avr.Version = 3
	prod := kmsg.NewPtrProduceRequest()
	prod.Version, prod.Acks = 9, -1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	prod.Topics = append(prod.Topics, pt)
	prodr := kmsg.NewPtrProduceResponse()
	prodr.Version = 9
	rt := kmsg.NewProduceResponseTopic()
	rt.Topic = "orders"
	rp := kmsg.NewProduceResponseTopicPartition()
	rp.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER
	rt.Partitions = append(rt.Partitions, rp)
	prodr.Topics = append(prodr.Topics, rt)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	fetch.Topics = append(fetch.Topics, ft)
	fetchr := kmsg.NewPtrFetchResponse()
	fetchr.Version = 11
	return [][2][]byte{
		{kreq(av, 0), kresp(avr, 0)},
		{kreq(prod, 1), kresp(prodr, 1)},
		{kreq(fetch, 2), kresp(fetchr, 2)},
		{kafkaProduceV7, kafkaProduceV7Err},
	}
}

func TestKafkaConversation(t *testing.T) {
	wants := []struct {
		method, version, path string
		corr                  uint32
		code                  int
		status                span.ResponseStatus
	}{
		{"ApiVersions", "3", "", 0, 0, span.StatusOK},
		{"Produce", "9", "orders", 1, 6, span.StatusServerError},
		{"Fetch", "11", "orders", 2, 0, span.StatusOK},
		{"Produce", "7", "orders", 5, 3, span.StatusClientError},
	}
	conv := kafkaConversation()
	for at := 0; at < 40; at++ {
		st := Kafka{}.NewStream()
		var reqs, resps []Message
		emit := func(m *Message) {
			if m.Response {
				resps = append(resps, *m)
			} else {
				reqs = append(reqs, *m)
			}
		}
		// Requests pipelined, then the responses (pairing is by correlation id).
		for i := range 2 {
			for _, ex := range conv {
				feedSplit(st, ex[i], i == 1, at%len(ex[i]), emit)
			}
		}
		if len(reqs) != len(wants) || len(resps) != len(wants) {
			t.Fatalf("split %d: %d requests, %d responses", at, len(reqs), len(resps))
		}
		for i, w := range wants {
			q, r := reqs[i], resps[i]
			if q.Method != w.method || q.Version != w.version || q.Path != w.path || q.StreamID != w.corr || r.StreamID != w.corr ||
				r.Status != w.code || r.RespStatus != w.status || r.Partial {
				t.Errorf("split %d, %d: %q v%s %q #%d → #%d %d %s %q; want %+v", at, i, q.Method, q.Version, q.Path, q.StreamID,
					r.StreamID, r.Status, r.RespStatus, r.Reason, w)
			}
		}
		if resps[3].Reason != "UNKNOWN_TOPIC_OR_PARTITION" || reqs[1].Offset != int64(len(conv[0][0])) {
			t.Errorf("reason %q, offset %d", resps[3].Reason, reqs[1].Offset)
		}
	}
}

func TestKafkaTruncatedAndUnknown(t *testing.T) {
	prod := kmsg.NewPtrProduceRequest()
	prod.Version = 7
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "big"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, 50000)
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	big := kreq(prod, 9)
	st := Kafka{}.NewStream()
	var msgs []Message
	emit := func(m *Message) { msgs = append(msgs, *m) }
	st.Feed(big[:1024], len(big), false, emit)
	st.Feed(kafkaProduceV7, len(kafkaProduceV7), false, emit)
	st.Feed(kafkaProduceV7Err, len(kafkaProduceV7Err), true, emit)
	st.Feed([]byte{0, 0, 0, 4, 0, 0, 0, 42}, 8, true, emit) // correlation 42: no request seen
	if len(msgs) != 4 || !msgs[0].Truncated || msgs[0].Path != "big" || msgs[1].Offset != int64(len(big)) ||
		msgs[2].Status != 3 || msgs[3].StreamID != 42 || !msgs[3].Partial {
		t.Fatalf("%+v", msgs)
	}
}

func TestKafkaDetect(t *testing.T) {
	conv := kafkaConversation()
	for name, tc := range map[string]struct {
		b    []byte
		want bool
	}{
		"api versions": {conv[0][0], true},
		"produce v9":   {conv[1][0], true},
		"produce v7":   {kafkaProduceV7, true},
		"http1":        {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		"http2":        {[]byte(H2Preface), false},
		"tls":          {[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00\x00\x00"), false},
		"redis":        {[]byte("*1\r\n$4\r\nPING\r\n"), false},
		"mysql":        {myQ, false},
		"pg startup":   {pgStartMsg, false},
		"pg query":     {pgQuery, false},
		"dns":          {dnsQuery, false},
	} {
		if got := (Kafka{}).Detect(tc.b); got != tc.want {
			t.Errorf("%s: Detect %v", name, got)
		}
	}
	for _, p := range Parsers {
		if _, ok := p.(Kafka); !ok && p.Detect(kafkaProduceV7) {
			t.Errorf("%T takes a Kafka request", p)
		}
	}
	var m Message
	if err := (Kafka{}).Parse(kafkaProduceV7, &m); err != nil || m.Response || m.Method != "Produce" || m.Path != "orders" || m.StreamID != 5 {
		t.Errorf("parse: %v %+v", err, m)
	}
}

func FuzzKafka(f *testing.F) {
	req, resp := sides(kafkaConversation())
	f.Add(req, resp, uint16(30))
	f.Add(kafkaProduceV7, kafkaProduceV7Err, uint16(9))
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint16) {
		fuzzStream(t, Kafka{}.NewStream(), req, resp, int(split))
	})
}

func BenchmarkKafkaStream(b *testing.B) {
	st := Kafka{}.NewStream()
	n := 0
	emit := func(*Message) { n++ }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		st.Feed(kafkaProduceV7, len(kafkaProduceV7), false, emit)
		st.Feed(kafkaProduceV7Err, len(kafkaProduceV7Err), true, emit)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
