// Package span defines the Zerotrace span: one request/response exchange seen
// at one observation point (a process's syscalls or a network interface).
//
// docs/span.md describes the span record: tap sides, fields, correlation
// keys; the Arrow schema used to store spans lives in arrow.go. Everything that produces spans (eBPF capture, packet capture, the
// generator) and everything that consumes them (store, assembler, plugin)
// builds against this package.
package span
