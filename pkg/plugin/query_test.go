package plugin

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestParseQueryBytes: annotated query JSON, accepted or rejected with an
// error that quotes at most a short prefix.
func TestParseQueryBytes(t *testing.T) {
	long := strings.Repeat("a", 5000)
	for _, c := range []struct {
		name, json string
		err        string // "" = accepted
	}{
		{"empty object: a search", `{}`, ""},
		{"trace by 32 hex digits", `{"queryType":"trace","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}`, ""},
		{"trace by span id, spaces trimmed", `{"queryType":"trace","spanId":" 12345 "}`, ""},
		{"not json", `{"queryType":`, "reading query"},
		{"limit of the wrong type", `{"limit":"ten"}`, "reading query"},
		{"unknown type", `{"queryType":"graph"}`, `unknown query type "graph"`},
		{"trace without id", `{"queryType":"trace"}`, "needs a trace id"},
		{"trace id of 31 digits", `{"queryType":"trace","traceId":"4bf92f3577b34da6a3ce929d0e0e473"}`, "trace id"},
		{"span id zero", `{"queryType":"trace","spanId":"0"}`, "span id"},
		{"span id past uint64", `{"queryType":"trace","spanId":"18446744073709551616"}`, "span id"},
		{"unknown protocol", `{"protocol":"smtp"}`, `protocol "smtp"`},
		{"unknown status", `{"status":"fine"}`, `status "fine"`},
		{"negative min duration", `{"minDuration":"-1s"}`, "min duration"},
		{"service too long", `{"service":"` + long + `"}`, "at most 1024 bytes"},
		{"service not UTF-8", `{"service":"\udc00"}`, ""}, // JSON turns a lone surrogate into U+FFFD
		{"long trace id quoted short", `{"queryType":"trace","traceId":"` + long + `"}`, `… (5000 bytes)`},
		{"span id in hex", `{"queryType":"trace","spanId":"2d2d50bea4d9a801"}`, ""},
		{"span id in upper-case hex", `{"queryType":"trace","spanId":"2D2D50BEA4D9A801"}`, ""},
		{"trace id of a span's 16 hex digits", `{"queryType":"trace","traceId":"2d2d50bea4d9a801"}`, ""},
		{"span id of 17 hex digits", `{"queryType":"trace","spanId":"2d2d50bea4d9a8011"}`, "span id"},
		{"a list of services", `{"service":["reviews","ratings"]}`, ""},
		{"a list with an empty value", `{"service":["reviews",""]}`, ""},
		{"a null filter", `{"service":null}`, ""},
		{"a number as a service", `{"service":5}`, "list of strings"},
		{"a list of numbers", `{"pod":[1,2]}`, "list of strings"},
		{"one bad protocol in a list", `{"protocol":["http","smtp"]}`, `protocol "smtp"`},
		{"status list", `{"status":["server_error","timeout"]}`, ""},
		{"response code class", `{"responseCode":"5xx"}`, ""},
		{"response code list", `{"responseCode":["503","4XX"]}`, ""},
		{"response code 0xx", `{"responseCode":"0xx"}`, "response code"},
		{"response code word", `{"responseCode":"bad"}`, "response code"},
		{"max duration", `{"maxDuration":"1.5s"}`, ""},
		{"max below min", `{"minDuration":"2s","maxDuration":"1s"}`, "less than min"},
		{"negative max", `{"maxDuration":"-1s"}`, "max duration"},
		{"table of spans", `{"tableType":"spans"}`, ""},
		{"table of rows", `{"tableType":"rows"}`, "table type"},
		{"metric p99", `{"queryType":"metrics","metric":"p99"}`, ""},
		{"metric of another name", `{"queryType":"metrics","metric":"latency"}`, `metric "latency"`},
		{"101 pods", `{"pod":[` + manyJSON(101) + `]}`, "at most 100"},
	} {
		_, err := ParseQuery([]byte(c.json))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: want an error with %q, got %v", c.name, c.err, err)
		case err != nil && len(err.Error()) > 200:
			t.Errorf("%s: error of %d bytes", c.name, len(err.Error()))
		}
	}
	q, _ := ParseQuery([]byte(`{"service":["a","b","a",""],"responseCode":["5xx","404"],"queryType":"metrics"}`))
	if len(q.Service) != 2 || q.Metric != MetricRate || len(q.codes) != 2 || q.codes[0] != (codeRange{500, 599}) || q.codes[1] != (codeRange{404, 404}) {
		t.Errorf("lists: %+v", q)
	}
	q, _ = ParseQuery([]byte(`{"limit":-3}`))
	if q.Limit != 20 {
		t.Errorf("limit -3 → %d, want 20", q.Limit)
	}
	q, _ = ParseQuery([]byte(`{"limit":1000000}`))
	if q.Limit != maxTraceLimit {
		t.Errorf("trace search limit 1000000 → %d, want %d", q.Limit, maxTraceLimit)
	}
	q, _ = ParseQuery([]byte(`{"limit":1000000,"tableType":"spans"}`))
	if q.Limit != maxLimit {
		t.Errorf("limit 1000000 → %d, want %d", q.Limit, maxLimit)
	}
}

// manyJSON is n distinct JSON strings, comma-separated.
func manyJSON(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", fmt.Sprint("v", i))
	}
	return b.String()
}

func TestTimeRange(t *testing.T) {
	t1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		from, to time.Time
		ok       bool
		fromNs   int64
		toNs     int64
	}{
		{"an hour", t1, t1.Add(time.Hour), true, t1.UnixNano(), t1.Add(time.Hour).UnixNano()},
		{"reversed", t1.Add(time.Hour), t1, false, 0, 0},
		{"empty", t1, t1, false, 0, 0},
		{"zero to zero", time.Unix(0, 0), time.Unix(0, 0), false, 0, 0},
		{"from before 1970", time.Unix(-100, 0), t1, true, 0, t1.UnixNano()},
		{"to after 2262", t1, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), true, t1.UnixNano(), 1<<63 - 1},
		{"all before 1970", time.Unix(-100, 0), time.Unix(-10, 0), false, 0, 0},
		{"all after 2262", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2301, 1, 1, 0, 0, 0, 0, time.UTC), false, 0, 0},
	} {
		f, to, err := TimeRange(c.from, c.to)
		if (err == nil) != c.ok || f != c.fromNs || to != c.toNs {
			t.Errorf("%s: %d %d %v", c.name, f, to, err)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{`{}`, `{"queryType":"trace","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}`,
		`{"queryType":"metrics","service":"reviews","minDuration":"10ms","limit":5}`, `{"protocol":"http","status":"ok"}`,
		`{"service":["a","b"],"pod":"p","responseCode":["5xx","404"],"maxDuration":"1s","tableType":"spans"}`,
		`{"queryType":"metrics","metric":"p99","exemplars":false}`, `{"queryType":"trace","spanId":"2d2d50bea4d9a801"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuery(b)
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if q.Limit < 1 || q.Limit > maxLimit || len(q.Service) > maxValues || q.minDuration < 0 ||
			q.maxDuration > 0 && q.maxDuration < q.minDuration || len(q.codes) != len(q.ResponseCode) {
			t.Fatalf("accepted %+v", q)
		}
	})
}

func FuzzTimeRange(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(-1), int64(1<<62))
	f.Fuzz(func(t *testing.T, a, b int64) {
		from, to, err := TimeRange(time.Unix(0, a), time.Unix(0, b))
		if err == nil && (from < 0 || to <= from) {
			t.Fatalf("%d %d → %d %d", a, b, from, to)
		}
	})
}

func BenchmarkParseQuery(b *testing.B) {
	js := []byte(`{"queryType":"search","namespace":"bookinfo","service":"reviews","protocol":"http","status":"server_error","minDuration":"100ms","limit":50}`)
	for b.Loop() {
		if _, err := ParseQuery(js); err != nil {
			b.Fatal(err)
		}
	}
}
