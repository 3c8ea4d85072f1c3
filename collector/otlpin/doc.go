// Package otlpin is the collector's OTLP receiver: OpenTelemetry SDKs on
// the node send spans over gRPC (default :4317) or HTTP (default :4318,
// protobuf or JSON, gzip); they are converted by pkg/otlp and written to
// the node's shards beside the captured spans. It is off by default
// (collector config `otlp:`). Limits on message size and spans per request
// answer with OTLP's own errors (gRPC ResourceExhausted / InvalidArgument,
// HTTP 413 / 400 with a google.rpc.Status body), and a malformed span is
// rejected alone through OTLP's partial success. docs/otlp.md.
package otlpin
