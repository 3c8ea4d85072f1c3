// Package export sends assembled traces to an OpenTelemetry backend over
// OTLP (gRPC or HTTP/protobuf): it follows the shards as they are sealed
// (directories or a bucket mirror), keeps the spans of the last minutes in
// memory, assembles each trace once it has settled (no new span linked for
// the quiet period), and sends it through a bounded queue with retries and
// backoff. A checkpoint of what was exported, and deterministic ids
// (pkg/otlp), make restarts neither lose nor duplicate; a span that joins
// a trace after it was exported is sent later under the trace id already
// used. docs/otlp.md describes it.
package export
