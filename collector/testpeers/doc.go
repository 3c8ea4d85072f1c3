// Package testpeers holds small programs the capture tests run as separate
// processes (the capture ignores its own process): a gRPC server and client
// (grpcpeer) and a Kafka broker, producer and consumer (kafkapeer). They
// speak the protocols through the real libraries, grpc-go and franz-go.
package testpeers
