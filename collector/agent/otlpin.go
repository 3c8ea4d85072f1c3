//go:build linux

package agent

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerotrace/zerotrace/collector/otlpin"
	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// startOTLP starts the OTLP receiver when configured (nil otherwise) and
// registers its counters.
func startOTLP(cfg *Config, emit func(*span.Span), log *slog.Logger, reg *prometheus.Registry) (*otlpin.Receiver, error) {
	c := cfg.OTLP
	if !c.Enabled {
		return nil, nil
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_otlp_export_spans_skipped_total",
		Help: "Captured spans of the SDKs' own exports to the OTLP receiver, not stored."}, func() float64 { return float64(otlpSkipped.Load()) }))
	r, err := otlpin.Start(otlpin.Config{Node: cfg.Node, GRPC: c.GRPC, HTTP: c.HTTP, MaxMessageBytes: c.MaxMessageBytes,
		Limits: otlp.Limits{MaxSpans: c.MaxSpans, MaxAttributes: c.MaxAttributes}, Listen: otlpin.ListenIn(c.Netns)}, emit, log)
	if err != nil {
		return nil, err
	}
	for _, m := range []struct {
		name, help string
		f          func() int64
	}{
		{"zerotrace_otlp_requests_total", "OTLP export requests received.", r.Stats.Requests.Load},
		{"zerotrace_otlp_spans_total", "SDK spans received and stored.", r.Stats.SpansAccepted.Load},
		{"zerotrace_otlp_rejected_spans_total", "SDK spans rejected alone (partial success).", r.Stats.SpansRejected.Load},
		{"zerotrace_otlp_refused_requests_total", "OTLP requests refused whole (too large, too many spans, not OTLP).", r.Stats.Refused.Load},
	} {
		f := m.f
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, func() float64 { return float64(f()) }))
	}
	return r, nil
}

// otlpSkipped counts the captured spans of SDK exports to the receiver.
var otlpSkipped atomic.Int64

// skipOTLPTraffic wraps emit so that the captured spans of the SDKs'
// exports to the collector's own OTLP receiver (a call to one of its
// listen addresses; any address of that port when it listens on all) are
// not stored: they are telemetry about the requests, not part of them, and
// containment would otherwise hang an exporter goroutine's call under
// whatever request its process had in flight.
func skipOTLPTraffic(c OTLPConfig, emit func(*span.Span)) func(*span.Span) {
	if !c.Enabled {
		return emit
	}
	type target struct {
		ip   netip.Addr // invalid: any
		port uint16
	}
	var ts []target
	for _, a := range []string{c.GRPC, c.HTTP} {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		ip, _ := netip.ParseAddr(host)
		if ip.IsValid() && ip.IsUnspecified() {
			ip = netip.Addr{}
		}
		ts = append(ts, target{ip.Unmap(), uint16(p)})
	}
	return func(s *span.Span) {
		if s.SignalSource != span.SourceOTel {
			for _, t := range ts {
				if s.ServerPort == t.port && (!t.ip.IsValid() || s.ServerIP == t.ip) {
					otlpSkipped.Add(1)
					return
				}
			}
		}
		emit(s)
	}
}
