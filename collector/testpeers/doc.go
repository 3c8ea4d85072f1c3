// Package testpeers holds small programs the capture tests run as separate
// processes (the capture ignores its own process): a gRPC server and client
// (grpcpeer), a Kafka broker, producer and consumer (kafkapeer), and Go
// crypto/tls HTTP/1.1 and gRPC servers and clients (tlspeer). They speak the
// protocols through the real libraries, grpc-go, franz-go and crypto/tls.
package testpeers
