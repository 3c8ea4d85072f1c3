//go:build linux

package agent

import (
	"log/slog"

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
