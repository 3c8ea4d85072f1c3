package l4flight

import (
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// c is one syscall as the kernel sent it (bpf/socket/opaque.h): direction,
// TCP sequence, length, the first bytes captured (hex).
type c struct {
	dir  session.Dir
	seq  uint32
	n    int
	head string
}

const (
	out = session.Egress
	in  = session.Ingress
)

// Conversations recorded from nginx excluded from TLS reading
// (TestCaptureTLSOpaque, collector/ebpf): an nginx proxy's upstream
// connection (client) and the upstream nginx's (server).
var conversations = []struct {
	name   string
	chunks []c
	want   []string // "[req seq,+bytes) [resp seq,+bytes)" per span
}{
	{"TLS 1.2 full handshake, client", []c{
		{out, 1526091475, 188, "16030100b701"}, // ClientHello
		{in, 1320211672, 626, "160303004102"},  // ServerHello .. ServerHelloDone
		{out, 1526091663, 93, "160303002510"},  // ClientKeyExchange, ChangeCipherSpec, Finished
		{in, 1320212298, 258, "16030300ca04"},  // NewSessionTicket, ChangeCipherSpec, Finished
		{out, 1526091756, 160, "170303009bbe"}, // the request
		{in, 1320212556, 237, "17030300c95d"},  // the response and the server's close_notify, one read
	}, []string{"[1526091756,+160) [1320212556,+237)"}},
	{"TLS 1.2 full handshake, server: its close_notify after the response is no part of it", []c{
		{in, 1, 1, "16"}, // nginx peeks at the first byte (the capture drops it: Peek)
		{in, 1526091475, 188, "16030100b701"},
		{out, 1320211672, 626, "160303004102"},
		{in, 1526091663, 93, "160303002510"},
		{out, 1320212298, 258, "16030300ca04"},
		{in, 1526091756, 160, "170303009bbe"},
		{out, 1320212556, 206, "17030300c95d"},
		{out, 1320212762, 31, "150303001a5d"}, // close_notify
	}, []string{"[1526091756,+160) [1320212556,+206)"}},
	{"TLS 1.3, client: Finished and request one flight, tickets and response the other", []c{
		{out, 635574293, 225, "16030100dc01"},
		{in, 923848007, 784, "160303007a02"},
		{out, 635574518, 80, "140303000101"},  // ChangeCipherSpec, Finished
		{out, 635574598, 153, "170303009404"}, // the request
		{in, 923848791, 765, "170303010aee"},  // two tickets, the response, close_notify
	}, []string{"[635574598,+153) [923848791,+765)"}}, // the request after the Finished
	{"TLS 1.3, server: the Finished read apart, tickets written, then the request", []c{
		{in, 635574293, 225, "16030100dc01"},
		{out, 923848007, 784, "160303007a02"},
		{in, 635574518, 80, "140303000101"},
		{out, 923848791, 271, "170303010aee"}, // ticket
		{out, 923849062, 271, "170303010aae"}, // ticket
		{in, 635574598, 153, "170303009404"},
		{out, 923849333, 199, "17030300c2da"},
		{out, 923849532, 24, "1703030013a4"}, // close_notify
	}, []string{"[635574598,+153) [923849333,+199)"}},
	{"TLS 1.3 resumed, server: Finished and request in one read", []c{
		{in, 2607328444, 512, "16030101fb01"},
		{out, 3198671467, 241, "160303008002"},
		{in, 2607328956, 233, "140303000101"},
		{out, 3198671708, 271, "170303010abb"}, // ticket
		{out, 3198671979, 199, "17030300c296"},
		{out, 3198672178, 24, "17030300135a"},
	}, []string{"[2607328956,+233) [3198671708,+470)"}},
	{"TLS 1.2 resumed, client: keep-alive, two requests", []c{
		{out, 2285585636, 412, "160301019701"},
		{in, 2056255007, 141, "160303005502"},
		{out, 2285586048, 51, "140303000101"},
		{out, 2285586099, 160, "1703030094aa"},
		{in, 2056255148, 206, "17030300c2f6"},
		{out, 2285586259, 150, "1703030091bb"},
		{in, 2056255354, 300, "170303011fcc"},
		{out, 2285586409, 31, "150303001a26"},
	}, []string{"[2285586099,+160) [2056255148,+206)", "[2285586259,+150) [2056255354,+300)"}}, // the first request after the Finished
	{"TLS 1.2 resumed, server: keep-alive, the first exchange is not told from a Finished and tickets: no span", []c{
		{in, 2285585636, 412, "160301019701"},
		{out, 2056255007, 141, "160303005502"},
		{in, 2285586048, 211, "140303000101"},
		{out, 2056255148, 206, "17030300c2f6"},
		{in, 2285586259, 150, "1703030091bb"},
		{out, 2056255354, 300, "170303011fcc"},
	}, []string{"[2285586259,+150) [2056255354,+300)"}},
	{"a request without response, a flight no request asked for", []c{
		{in, 10, 300, "160301012b01"},
		{out, 900, 100, "16030300600a"},
		{out, 1000, 120, "1703030073aa"}, // server flight before any request
		{in, 310, 200, "17030300c3bb"},   // request, never answered
	}, nil},
}

func TestFlows(t *testing.T) {
	for _, cv := range conversations {
		t.Run(cv.name, func(t *testing.T) {
			var got []string
			f := NewFlow(session.ConnMeta{Node: "n", Source: span.SourceEBPF}, Config{}, func(s *span.Span) {
				if !s.Flags.Has(span.FlagTLS) || s.L7Protocol != span.L7Unknown {
					t.Errorf("span flags %b protocol %v", s.Flags, s.L7Protocol)
				}
				got = append(got, fmt.Sprintf("[%d,+%d) [%d,+%d)", s.ReqTCPSeq, s.RequestBytes, s.RespTCPSeq, s.ResponseBytes))
			})
			for i, ch := range cv.chunks {
				b, err := hex.DecodeString(ch.head)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 && Peek(b, ch.n) {
					continue // as collector/ebpf does
				}
				if i == 0 && !Starts(b) {
					t.Fatalf("first chunk %s does not start a flow", ch.head)
				}
				f.Feed(session.Chunk{Dir: ch.dir, StartNs: int64(i), EndNs: int64(i), TCPSeq: ch.seq, Data: b, Len: ch.n, TID: 7})
			}
			f.Close()
			if fmt.Sprint(got) != fmt.Sprint(cv.want) {
				t.Errorf("spans %v, want %v", got, cv.want)
			}
		})
	}
}

func TestStartsAndPeek(t *testing.T) {
	for _, tc := range []struct {
		head         string
		n            int
		starts, peek bool
	}{
		{"16030100b701", 188, true, false}, // ClientHello record
		{"16", 1, false, true},             // nginx's one-byte peek
		{"1603", 2, false, true},
		{"17030300c2", 199, false, false}, // application data: a connection seen mid-way
		{"474554202f", 80, false, false},  // "GET /"
		{"16", 40, false, false},          // one byte captured of more: not a peek
	} {
		b, _ := hex.DecodeString(tc.head)
		if Starts(b) != tc.starts || Peek(b, tc.n) != tc.peek {
			t.Errorf("%s/%d: Starts %v Peek %v, want %v %v", tc.head, tc.n, Starts(b), Peek(b, tc.n), tc.starts, tc.peek)
		}
	}
}

func BenchmarkFlow(b *testing.B) {
	cv := conversations[2].chunks
	var data [][]byte
	for _, ch := range cv {
		d, _ := hex.DecodeString(ch.head)
		data = append(data, d)
	}
	ids := span.NewIDGenerator("n", time.Now())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f := NewFlow(session.ConnMeta{}, Config{IDs: ids}, func(*span.Span) {})
		for j, ch := range cv {
			f.Feed(session.Chunk{Dir: ch.dir, TCPSeq: ch.seq, Data: data[j], Len: ch.n})
		}
		f.Close()
	}
}
