package plugin

import (
	"encoding/json"
	"fmt"
	"time"
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
		return q, fmt.Errorf("unknown query type %q (trace, search, serviceMap, metrics)", q.QueryType)
	}
	if q.MinDuration != "" {
		d, err := time.ParseDuration(q.MinDuration)
		if err != nil || d < 0 {
			return q, fmt.Errorf("min duration %q: want a duration like 100ms", q.MinDuration)
		}
		q.minDuration = d
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	if q.Limit > 10000 {
		q.Limit = 10000
	}
	if q.QueryType == QueryTrace && q.TraceID == "" && q.SpanID == "" {
		return q, fmt.Errorf("trace query needs a trace id or a span id")
	}
	return q, nil
}
