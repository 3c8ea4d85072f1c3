//go:build linux

package agent

import (
	"net/netip"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestSkipOTLPTraffic: captured calls to the receiver's addresses are not
// stored, every other span is, SDK spans always.
func TestSkipOTLPTraffic(t *testing.T) {
	var got []span.Span
	emit := skipOTLPTraffic(OTLPConfig{Enabled: true, GRPC: ":4317", HTTP: "10.203.1.1:4318"}, func(s *span.Span) { got = append(got, *s) })
	ip := netip.MustParseAddr
	for _, s := range []span.Span{
		{SpanID: 1, SignalSource: span.SourceEBPF, ServerIP: ip("10.203.1.1"), ServerPort: 4318}, // skipped
		{SpanID: 2, SignalSource: span.SourcePacket, ServerIP: ip("10.9.9.9"), ServerPort: 4317}, // skipped: any address
		{SpanID: 3, SignalSource: span.SourceEBPF, ServerIP: ip("10.203.1.2"), ServerPort: 4318}, // another server
		{SpanID: 4, SignalSource: span.SourceEBPF, ServerIP: ip("10.203.1.1"), ServerPort: 9080},
		{SpanID: 5, SignalSource: span.SourceOTel, ServerIP: ip("10.203.1.1"), ServerPort: 4318},
	} {
		emit(&s)
	}
	if len(got) != 3 || got[0].SpanID != 3 || got[1].SpanID != 4 || got[2].SpanID != 5 {
		t.Fatalf("kept %v", got)
	}
	var n int
	off := skipOTLPTraffic(OTLPConfig{}, func(*span.Span) { n++ })
	off(&span.Span{ServerPort: 4317})
	if n != 1 {
		t.Fatal("a disabled receiver skipped a span")
	}
}
