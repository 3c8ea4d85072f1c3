// Package seaweedfs runs a real S3 server for tests and benchmarks:
// SeaweedFS's `weed server` with its S3 gateway (HTTP and HTTPS) on
// loopback, on free ports, with a temporary data directory and one
// identity. .ci/seaweedfs builds the binary. Linux only.
package seaweedfs
