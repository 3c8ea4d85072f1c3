package plugin

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// Query types.
const (
	QueryTrace      = "trace"
	QuerySearch     = "search"
	QueryServiceMap = "serviceMap"
	QueryMetrics    = "metrics"
)

// Query is the JSON model of one query (src/types.ts ZerotraceQuery).
type Query struct {
	QueryType   string `json:"queryType"`
	TraceID     string `json:"traceId"`
	SpanID      string `json:"spanId"`
	Namespace   string `json:"namespace"`
	Service     string `json:"service"`
	Workload    string `json:"workload"`
	Protocol    string `json:"protocol"`
	Endpoint    string `json:"endpoint"`
	Status      string `json:"status"`
	MinDuration string `json:"minDuration"`
	Limit       int    `json:"limit"`

	minDuration time.Duration
}

// Limits of query fields.
const (
	maxFieldBytes = 1024  // namespace, service, endpoint
	maxLimit      = 10000 // search rows
	quoteBytes    = 40    // bad input quoted in errors
)

// short quotes at most quoteBytes of untrusted input.
func short(s string) string {
	if len(s) <= quoteBytes {
		return fmt.Sprintf("%q", s)
	}
	cut := quoteBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}

// ParseQuery decodes and checks a query's JSON.
func ParseQuery(b []byte) (Query, error) {
	var q Query
	if err := json.Unmarshal(b, &q); err != nil {
		return q, fmt.Errorf("reading query: %w", err)
	}
	if q.QueryType == "" {
		q.QueryType = QuerySearch
	}
	switch q.QueryType {
	case QueryTrace, QuerySearch, QueryServiceMap, QueryMetrics:
	default:
		return q, fmt.Errorf("unknown query type %s (trace, search, serviceMap, metrics)", short(q.QueryType))
	}
	for _, f := range []struct{ name, v string }{{"namespace", q.Namespace}, {"service", q.Service}, {"endpoint", q.Endpoint}} {
		if len(f.v) > maxFieldBytes || !utf8.ValidString(f.v) {
			return q, fmt.Errorf("%s %s: want at most %d bytes of UTF-8", f.name, short(f.v), maxFieldBytes)
		}
	}
	if q.Protocol != "" {
		if _, err := span.ParseL7Protocol(q.Protocol); err != nil {
			return q, fmt.Errorf("protocol %s: unknown", short(q.Protocol))
		}
	}
	if q.Status != "" {
		if _, err := span.ParseResponseStatus(q.Status); err != nil {
			return q, fmt.Errorf("status %s: want ok, client_error, server_error or timeout", short(q.Status))
		}
	}
	if q.MinDuration != "" {
		d, err := time.ParseDuration(q.MinDuration)
		if err != nil || d < 0 {
			return q, fmt.Errorf("min duration %s: want a duration like 100ms", short(q.MinDuration))
		}
		q.minDuration = d
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.Limit = min(q.Limit, maxLimit)
	if q.QueryType == QueryTrace {
		switch {
		case q.TraceID != "":
			if _, _, err := trace.ParseID(strings.TrimSpace(q.TraceID)); err != nil {
				return q, fmt.Errorf("trace id %s: want 32 hex digits, or a span id", short(q.TraceID))
			}
			q.TraceID = strings.TrimSpace(q.TraceID)
		case q.SpanID != "":
			if _, _, err := trace.ParseID(strings.TrimSpace(q.SpanID)); err != nil {
				return q, fmt.Errorf("span id %s: want a decimal span id", short(q.SpanID))
			}
			q.SpanID = strings.TrimSpace(q.SpanID)
		default:
			return q, fmt.Errorf("trace query needs a trace id or a span id")
		}
	}
	return q, nil
}

// lastNs is the last instant a span's int64 nanosecond time can hold
// (2262-04-11T23:47:16Z).
var lastNs = time.Unix(0, math.MaxInt64)

// TimeRange checks a query's time range and returns it in nanoseconds.
// A range that starts before 1970 starts at 1970, one that ends after
// 2262-04-11 ends then (no span is outside); a reversed or empty range,
// or one wholly outside those years, is an error. (Over Grafana's plugin
// protocol an end after 2262 arrives wrapped around, so it is reported as a
// reversed range with a hint.)
func TimeRange(from, to time.Time) (fromNs, toNs int64, err error) {
	if from.After(to) {
		hint := ""
		if to.Before(time.Unix(0, 0)) {
			// Grafana's SDK turns epoch milliseconds into nanoseconds: an end
			// after 2262 arrives wrapped around.
			hint = " (an end after 2262-04-11 wraps around to before 1970 on its way to the plugin)"
		}
		return 0, 0, fmt.Errorf("time range is reversed: from %s is after to %s%s",
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), hint)
	}
	if from.Equal(to) {
		return 0, 0, fmt.Errorf("time range is empty: from and to are both %s", from.UTC().Format(time.RFC3339))
	}
	if !to.After(time.Unix(0, 0)) || from.After(lastNs) {
		return 0, 0, fmt.Errorf("time range %s to %s holds no span time (1970 to 2262)",
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	if from.Before(time.Unix(0, 0)) {
		from = time.Unix(0, 0)
	}
	if to.After(lastNs) {
		to = lastNs
	}
	return from.UnixNano(), to.UnixNano(), nil
}
