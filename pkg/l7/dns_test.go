package l7

import (
	"errors"
	"testing"

	"github.com/zerotrace/zerotrace/internal/annotated"
	"github.com/zerotrace/zerotrace/pkg/span"
)

var unhexDNS = annotated.Hex // annotated hex dumps

var dnsQuery = unhexDNS(`
	1a2b             // id
	0100             // flags: query, RD
	0001 0000 0000 0000 // 1 question, no answers
	07 64657461696c73  // "details"
	04 7465737400      // "test", root
	0001 0001          // type A, class IN
`)

var dnsAnswer = unhexDNS(`
	1a2b             // id
	8180             // flags: response, RD, RA, NOERROR
	0001 0001 0000 0000 // 1 question, 1 answer
	07 64657461696c73 04 7465737400 0001 0001
	c00c 0001 0001 0000003c 0004 0acb010a // answer: pointer to the name, A, IN, TTL 60, 10.203.1.10
`)

var dnsNX = unhexDNS(`
	1a2c 8183 0001 0000 0000 0000 // response, NXDOMAIN
	07 6d697373696e67 04 7465737400 001c 0001 // "missing.test" AAAA
`)

func TestDNS(t *testing.T) {
	var m Message
	if err := (DNS{}).Parse(dnsQuery, &m); err != nil || m.Response || m.Method != "A" || m.Path != "details.test" ||
		m.StreamID != 0x1a2b || m.Total() != len(dnsQuery) {
		t.Fatalf("query: %v %+v", err, m)
	}
	if err := (DNS{}).Parse(dnsAnswer, &m); err != nil || !m.Response || m.RespStatus != span.StatusOK || m.Answers != 1 ||
		m.StreamID != 0x1a2b || m.Reason != "NOERROR" {
		t.Fatalf("answer: %v %+v", err, m)
	}
	if err := (DNS{}).Parse(dnsNX, &m); err != nil || m.Method != "AAAA" || m.RespStatus != span.StatusClientError || m.Reason != "NXDOMAIN" {
		t.Fatalf("nxdomain: %v %+v", err, m)
	}
	tcp := append([]byte{0, byte(len(dnsQuery))}, dnsQuery...)
	if err := (DNS{TCP: true}).Parse(tcp, &m); err != nil || m.Path != "details.test" || m.Total() != len(tcp) {
		t.Fatalf("tcp: %v %+v", err, m)
	}
	loop := append([]byte(nil), dnsAnswer...)
	loop[len(dnsQuery)+1] = byte(len(dnsQuery)) // the answer's pointer points at itself
	for name, b := range map[string][]byte{
		"short":              dnsQuery[:10],
		"two questions":      patchDNS(dnsQuery, 5, 2),
		"query with answers": patchDNS(dnsQuery, 7, 1),
		"label past end":     dnsQuery[:20],
		"binary label":       patchDNS(dnsQuery, 13, 0x01),
		"http":               []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	} {
		if err := (DNS{}).Parse(b, &m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, ok := dnsName(loop, len(dnsQuery)); ok {
		t.Error("a compression loop was followed")
	}
	if (DNS{}).Detect(dnsAnswer) || !(DNS{}).Detect(dnsQuery) || DetectUDP(dnsQuery) == nil {
		t.Error("Detect")
	}
}

func patchDNS(b []byte, off int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[off] = v
	return c
}

func FuzzDNS(f *testing.F) {
	f.Add(dnsQuery, false)
	f.Add(dnsAnswer, false)
	f.Add(dnsNX, false)
	f.Add(append([]byte{0, byte(len(dnsQuery))}, dnsQuery...), true)
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		var m Message
		if (DNS{TCP: tcp}).Parse(b, &m) == nil && len(m.Path) > 255 {
			t.Fatalf("name of %d bytes", len(m.Path))
		}
	})
}

func BenchmarkDNSParse(b *testing.B) {
	var m Message
	for i := 0; i < b.N; i++ {
		if err := (DNS{}).Parse(dnsAnswer, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
