// Package bookinfo is the two-node Bookinfo demo (scripts up, down and
// topology.sh; services in four languages; nginx sidecars) and its
// end-to-end test: every request's trace, asked of the plugin binary over
// Grafana's plugin protocol, must be the 38 expected spans with the expected
// parents.
package bookinfo
