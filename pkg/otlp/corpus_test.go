package otlp

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestWriteCorpus regenerates the committed seed corpus of FuzzSpans:
// ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus ./pkg/otlp/.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzSpans")
	}
	// A whole Bookinfo trace as the exporter sends it: every protocol
	// attribute and resource of docs/otlp.md, 38 spans.
	tt, _ := bookinfoTrace(t, 3)
	tid, _ := TraceIDOf(tt.ID)
	m := NewMapper()
	m.AppendTrace(tid, tt, nil)
	bookinfo, err := ptraceotlp.NewExportRequestFromTraces(m.Traces()).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	server := rawSpan(tid[:], sid, parent, 2, start, end, kvStr("http.request.method", "GET"), kvStr("url.path", "/reviews/0"),
		kvInt("http.response.status_code", 200), kvStr("network.peer.address", "10.0.1.5"))
	good := request(server, rawSpan(tid[:], parent, nil, 3, start, end, kvStr("db.system", "mysql"), kvStr("db.query.text", "SELECT ?")))
	seeds := map[string][]byte{
		"seed-bookinfo-export": bookinfo,
		"seed-sdk-request":     good,
		"seed-truncated":       good[:len(good)*2/3],
		"seed-bad-span":        request(rawSpan(tid[:], make([]byte, 8), nil, 9, end, start)),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSpans")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
