// Package trace assembles traces at query time from stored spans.
//
// Assemble starts from a seed (a span id or a trace id), searches the store
// round by round along the spans' correlation keys, keeps only strict
// relations, and sets parents: network chains by tap side, process sets
// (a client call under the server span of the same process that caused it),
// links between sets. docs/assembly.md writes the rules down.
package trace
