// Package bookinfo is the two-node Bookinfo demo (scripts up, down and
// topology.sh; services in four languages; nginx sidecars; service variants
// under variants/, chosen with `up --variant`) and its end-to-end tests:
// TestBookinfoEndToEnd checks that every request's trace, asked of the plugin
// binary over Grafana's plugin protocol, is the 38 expected spans with the
// expected parents; TestVariants runs every variant and prints the causality
// matrix (completeness, correctness, overlap). Which request a span belongs to
// comes from the X-ZT-Marker header every server logs (harness_test.go).
package bookinfo
