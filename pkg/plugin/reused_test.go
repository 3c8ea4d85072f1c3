package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
)

// A client that sends one X-Request-ID on all of 120 requests (12 s): the
// trace query returns one request's whole trace, and the frame carries a
// notice that names the reused id.
func TestReusedIDNotice(t *testing.T) {
	dir := t.TempDir()
	traces := spangen.New(spangen.Config{Seed: 4, Start: t0, Interval: 100 * time.Millisecond, ClientXRID: "batch-7"}).Next(120)
	fillStore(t, dir, traces)
	d := newDS(t, dir)
	resp := run(t, d, map[string]any{"queryType": "trace", "spanId": itoa(traces[60].Spans[0].SpanID)}, t0.Add(-time.Minute), t0.Add(time.Minute))
	if resp.Error != nil {
		t.Fatal(resp.Error)
	}
	f := resp.Frames[0]
	if f.Rows() != 38 {
		t.Fatalf("trace frame: %d rows, want the request's 38", f.Rows())
	}
	var notices []string
	if f.Meta != nil {
		for _, n := range f.Meta.Notices {
			notices = append(notices, n.Text)
		}
	}
	want := `reused X-Request-ID "batch-7": 120 exchanges at`
	if len(notices) != 1 || !strings.HasPrefix(notices[0], want) {
		t.Fatalf("notices %q, want one starting %q", notices, want)
	}
}
