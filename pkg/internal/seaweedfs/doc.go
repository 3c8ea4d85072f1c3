// Package seaweedfs runs a real S3 server for tests: SeaweedFS's `weed
// server` with its S3 gateway on loopback, on free ports, with a temporary
// data directory and one identity. .ci/seaweedfs builds the binary.
package seaweedfs
