// Package otlp maps Zerotrace spans to and from OpenTelemetry's data model
// (the OpenTelemetry Collector's pdata: ptrace).
//
// Export (AppendTrace) turns an assembled trace into OTLP resource spans
// under OpenTelemetry's semantic conventions, with deterministic ids: a
// span's OTLP span id is its Zerotrace span id and every span of a trace
// carries the trace id the caller chose (TraceIDOf: the assembled trace's
// id), so the same trace exported twice has the same ids. Ingest (Spans)
// turns what an SDK sent into spans of signal source otel, with limits and
// clear errors. docs/otlp.md lists every attribute both ways.
package otlp
