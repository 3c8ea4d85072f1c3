package pluginclient

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/zerotrace/zerotrace/pkg/internal/storetest"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestPluginQueriesCheckTheirInput sends, in one request as a dashboard
// does, a good query next to reversed, empty, overflowing and oversized
// ones: each bad one gets its own short error, the good ones answer.
func TestPluginQueriesCheckTheirInput(t *testing.T) {
	bin := pluginBinary(t)
	dir := t.TempDir()
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	traces := genTraces(5, 10, start)
	storetest.WriteTraces(t, dir, "", traces)
	c, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
		JSONData: map[string]any{"dataDirs": []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from, to := start.Add(-time.Minute), time.Now()
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("f", 10000)
	type want struct {
		err    string // "" = answers
		status int32
	}
	cases := map[string]struct {
		q    DataQuery
		want want
	}{
		"good search":           {DataQuery{JSON: map[string]any{"queryType": "search", "limit": 5}, From: from, To: to}, want{}},
		"metrics reversed":      {DataQuery{JSON: map[string]any{"queryType": "metrics"}, From: to, To: from}, want{"reversed", 400}},
		"serviceMap reversed":   {DataQuery{JSON: map[string]any{"queryType": "serviceMap"}, From: to, To: from}, want{"reversed", 400}},
		"metrics to 2300":       {DataQuery{JSON: map[string]any{"queryType": "metrics"}, From: from, To: far}, want{"after 2262", 400}},
		"search from 2300":      {DataQuery{JSON: map[string]any{"queryType": "search"}, From: far, To: far.Add(time.Hour)}, want{"1970 to 2262", 400}},
		"search zero range":     {DataQuery{JSON: map[string]any{"queryType": "search"}, From: time.UnixMilli(0), To: time.UnixMilli(0)}, want{"empty", 400}},
		"metrics before 1970":   {DataQuery{JSON: map[string]any{"queryType": "metrics"}, From: time.Unix(-1e9, 0), To: time.Unix(-1e8, 0)}, want{"1970 to 2262", 400}},
		"metrics 1938 to 2262":  {DataQuery{JSON: map[string]any{"queryType": "metrics"}, From: time.Unix(-1e9, 0), To: time.Unix(0, 1<<62), Interval: time.Millisecond}, want{}},
		"trace id of 10000":     {DataQuery{JSON: map[string]any{"queryType": "trace", "traceId": long}, From: from, To: to}, want{"trace id", 400}},
		"protocol of 10000":     {DataQuery{JSON: map[string]any{"queryType": "search", "protocol": long}, From: from, To: to}, want{"protocol", 400}},
		"service of 10000":      {DataQuery{JSON: map[string]any{"queryType": "search", "service": long}, From: from, To: to}, want{"service", 400}},
		"min duration garbage":  {DataQuery{JSON: map[string]any{"queryType": "search", "minDuration": long}, From: from, To: to}, want{"min duration", 400}},
		"unknown type":          {DataQuery{JSON: map[string]any{"queryType": long}, From: from, To: to}, want{"unknown query type", 400}},
		"max duration garbage":  {DataQuery{JSON: map[string]any{"queryType": "search", "maxDuration": long}, From: from, To: to}, want{"max duration", 400}},
		"max below min":         {DataQuery{JSON: map[string]any{"queryType": "search", "minDuration": "2s", "maxDuration": "1s"}, From: from, To: to}, want{"less than min duration", 400}},
		"response code garbage": {DataQuery{JSON: map[string]any{"queryType": "search", "responseCode": []string{"5xx", long}}, From: from, To: to}, want{"response code", 400}},
		"unknown metric":        {DataQuery{JSON: map[string]any{"queryType": "metrics", "metric": long}, From: from, To: to}, want{"metric", 400}},
		"unknown table type":    {DataQuery{JSON: map[string]any{"queryType": "search", "tableType": "rows"}, From: from, To: to}, want{"table type", 400}},
		"101 services":          {DataQuery{JSON: map[string]any{"queryType": "search", "service": manyValues(101)}, From: from, To: to}, want{"at most 100", 400}},
		"service not a string":  {DataQuery{JSON: map[string]any{"queryType": "search", "service": 5}, From: from, To: to}, want{"list of strings", 400}},
		"span id in hex":        {DataQuery{JSON: map[string]any{"queryType": "trace", "spanId": span.FormatSpanID(traces[0].Spans[0].SpanID)}, From: from, To: to}, want{}},
		"hex span id as trace":  {DataQuery{JSON: map[string]any{"queryType": "trace", "traceId": span.FormatSpanID(traces[0].Spans[3].SpanID)}, From: from, To: to}, want{}},
		"negative limit":        {DataQuery{JSON: map[string]any{"queryType": "search", "limit": -5}, From: from, To: to}, want{}},
		"trace, reversed range": {DataQuery{JSON: map[string]any{"queryType": "trace", "spanId": itoa(traces[0].Spans[0].SpanID)}, From: to, To: from}, want{}},
	}
	var qs []DataQuery
	refs := map[string]string{}
	for name, c := range cases {
		q := c.q
		q.RefID = strings.ReplaceAll(name, " ", "_")
		refs[q.RefID] = name
		qs = append(qs, q)
	}
	got, err := c.QueryData(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	for ref, name := range refs {
		r, w := got[ref], cases[name].want
		switch {
		case w.err == "" && (r.Error != "" || len(r.Frames) == 0):
			t.Errorf("%s: want frames, got error %q (%d)", name, r.Error, r.Status)
		case w.err != "" && (!strings.Contains(r.Error, w.err) || r.Status != w.status):
			t.Errorf("%s: want a %d error about %q, got %d %q", name, w.status, w.err, r.Status, r.Error)
		case len(r.Error) > 200:
			t.Errorf("%s: error of %d bytes quotes too much: %.100q…", name, len(r.Error), r.Error)
		}
	}
	// Resources check their parameters the same way.
	for _, path := range []string{"services?from=" + long, "services?to=-5", "endpoints?from=99999999999999999999"} {
		status, body, err := c.Resource(ctx, path)
		if err != nil || status != 400 || len(body) > 200 {
			t.Errorf("%.60s: %v %d %.100q", path, err, status, body)
		}
	}
	status, body, err := c.Resource(ctx, "services?from=0&to=99999999999999")
	if err != nil || status != 200 || !strings.Contains(string(body), "ratings") {
		t.Errorf("services up to year 5138: %v %d %s", err, status, body)
	}
	if c.Exited() {
		t.Fatal("the plugin exited")
	}
}

// TestPluginDataDirectories: a missing directory, a file and a directory
// with no Zerotrace data are errors of every query and of CheckHealth; an
// empty directory is "no spans yet".
func TestPluginDataDirectories(t *testing.T) {
	bin := pluginBinary(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	from, to := time.Now().Add(-time.Hour), time.Now()
	for _, c := range []struct {
		dir, want string
		ok        bool
	}{
		{filepath.Join(tmp, "missing"), "no such file or directory", false},
		{file, "not a directory", false},
		{"/etc", "holds no Zerotrace data", false},
		{"/", "holds no Zerotrace data", false},
		{empty, "no spans yet", true},
	} {
		cl, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
			JSONData: map[string]any{"dataDirs": []string{c.dir}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		h, err := cl.CheckHealth(ctx)
		if err != nil || !strings.Contains(h.Message, c.want) || (h.Status == pluginv2.CheckHealthResponse_OK) != c.ok {
			t.Errorf("%s: CheckHealth %v %v %q, want %q", c.dir, err, h.GetStatus(), h.GetMessage(), c.want)
		}
		for _, qt := range []string{"search", "serviceMap", "metrics"} {
			r, err := cl.Query(ctx, map[string]any{"queryType": qt}, from, to)
			switch {
			case err != nil:
				t.Errorf("%s %s: %v", c.dir, qt, err)
			case c.ok && (r.Error != "" || len(r.Frames) == 0):
				t.Errorf("%s %s: want empty frames, got %q", c.dir, qt, r.Error)
			case !c.ok && (!strings.Contains(r.Error, c.want) || !strings.Contains(r.Error, c.dir)):
				t.Errorf("%s %s: want an error naming the directory, %q; got %q", c.dir, qt, c.want, r.Error)
			}
		}
		cancel()
		cl.Close()
	}
}

// manyValues is a list of n distinct services.
func manyValues(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "service-" + strconv.Itoa(i)
	}
	return out
}
