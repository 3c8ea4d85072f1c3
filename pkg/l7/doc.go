// Package l7 parses application protocols from captured bytes, for the eBPF
// and the packet capture alike. A Parser recognises the start of a message
// and reads what a span needs from its head; collector/session pairs
// requests with responses.
package l7
