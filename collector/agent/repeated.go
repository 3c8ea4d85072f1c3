//go:build linux

package agent

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerotrace/zerotrace/pkg/repeat"
)

// Repeated keys: X-Request-IDs and trace ids that one point of this node
// saw on more exchanges within a window than repeated_keys allows
// (pkg/repeat; docs/assembly.md "Reused ids"). Counted as spans are
// written, exported on /metrics, and logged (a few lines a minute at most).

// newRepeatCounter returns the node's counter; it logs the first keys to go
// over the bound in each minute.
func newRepeatCounter(cfg RepeatedKeysConfig, log *slog.Logger) *repeat.Counter {
	var mu sync.Mutex
	var since time.Time
	logged := 0
	bound := repeat.Bound{Exchanges: cfg.Exchanges, Window: cfg.Window}.OrDefault()
	return repeat.NewCounter(bound, 0, func(r repeat.Repeated) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(since) > time.Minute {
			since, logged = now, 0
		}
		if logged++; logged > 5 {
			return
		}
		log.Warn("reused correlation key: traces link spans by it only where it identifies one exchange",
			"key", r.Key.Kind.String(), "value", repeat.KeyString(r.Key), "service", r.Service, "at", r.Point.String(),
			"exchanges", r.Exchanges, "within", bound.Window)
	})
}

// repeatCollector exports a repeat.Counter's totals.
type repeatCollector struct{ c *repeat.Counter }

var (
	repKeys = prometheus.NewDesc("zerotrace_repeated_keys_total",
		"Correlation keys seen on more exchanges at one point within a window than repeated_keys allows (once per key, point and window).",
		[]string{"key"}, nil)
	repExchanges = prometheus.NewDesc("zerotrace_repeated_key_exchanges_total",
		"Exchanges beyond the bound that carried a repeated key.", []string{"key"}, nil)
	repUntracked = prometheus.NewDesc("zerotrace_repeated_keys_untracked_total",
		"Exchanges whose key the repeated-key count could not track (its table for the window was full).", nil, nil)
)

func (r repeatCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- repKeys
	ch <- repExchanges
	ch <- repUntracked
}

func (r repeatCollector) Collect(ch chan<- prometheus.Metric) {
	st := r.c.Stats()
	for i, k := range [2]string{"x_request_id", "trace_id"} {
		ch <- prometheus.MustNewConstMetric(repKeys, prometheus.CounterValue, float64(st.Keys[i]), k)
		ch <- prometheus.MustNewConstMetric(repExchanges, prometheus.CounterValue, float64(st.Exchanges[i]), k)
	}
	ch <- prometheus.MustNewConstMetric(repUntracked, prometheus.CounterValue, float64(st.Untracked))
}
