//go:build linux

package agent

import (
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// BenchmarkSpanQueueStore puts HTTP spans through the span queue into the
// store as the collector does at ~100-250k spans/s (a pause every 128 spans,
// so the writer keeps up and the queue hands over what came meanwhile), a
// seal every 60k spans; cpu-ns/span is the process's CPU per span (the
// pauses cost none).
func BenchmarkSpanQueueStore(b *testing.B) {
	sink := storeSink(b, 0)
	w := sink.w
	rows, wait := w.Batching()
	q := newSpanQueue(spanQueueMax, rows, wait, sink.write)
	s := span.Span{Kind: span.KindServer, L7Protocol: span.L7HTTP1, Service: "nginx", Endpoint: "GET /", RequestType: "GET",
		RequestResource: "/", ResponseStatus: 200, ProcessName: "nginx", PID: 1234, ReqTID: 1234, RespTID: 1234, ServerPort: 8080}
	base := time.Now().UnixNano()
	b.ResetTimer()
	c0 := cpuTime()
	for i := range b.N {
		s.SpanID, s.SocketID, s.ClientPort = uint64(i+1), uint64(i%16), uint16(40000+i%16)
		s.StartNs = base + int64(i)*10_000
		s.EndNs = s.StartNs + 40_000
		q.put(&s)
		if i%128 == 127 {
			time.Sleep(500 * time.Microsecond)
		}
		if i%60_000 == 59_999 {
			if err := w.Seal(); err != nil {
				b.Fatal(err)
			}
		}
	}
	q.close()
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/span")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
