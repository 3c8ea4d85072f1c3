// Package ebpf loads the socket capture of bpf/socket, reads its ring
// buffer into chunks of records (records.go), and a session worker decodes
// each event and feeds the per-connection sessions that turn them into
// c-p / s-p spans. Only tracepoints are used (no kprobes, no
// fentry here).
package ebpf
