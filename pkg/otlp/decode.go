package otlp

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Decode reads an OTLP ExportTraceServiceRequest body: protobuf, or with
// asJSON OTLP's JSON encoding.
func Decode(body []byte, asJSON bool) (ptrace.Traces, error) {
	req := ptraceotlp.NewExportRequest()
	if asJSON {
		if err := req.UnmarshalJSON(body); err != nil {
			return ptrace.Traces{}, fmt.Errorf("decoding OTLP JSON: %w", err)
		}
		return req.Traces(), nil
	}
	if err := req.UnmarshalProto(body); err != nil {
		return ptrace.Traces{}, fmt.Errorf("decoding OTLP protobuf: %w", err)
	}
	return req.Traces(), nil
}
