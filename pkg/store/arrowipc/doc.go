// Package arrowipc is the stored form of one span batch: an Arrow IPC stream
// (the schema message, one dictionary batch per dictionary column, one record
// batch, the end-of-stream marker) with every buffer zstd-compressed behind
// its 8-byte decompressed size.
//
// Encoder writes it (the flatbuffer metadata assembled here, one shared zstd
// encoder for every buffer); DecodeBatch reads it. The bytes a reader gets
// are untrusted, so DecodeBatch reads in two passes: the first checks every
// length, count and offset against the bytes present and the limits
// (MaxBatchRows, MaxDecodedBytes), the second allocates and decompresses.
// Malformed bytes give an error wrapping ErrBatch, never a crash. pkg/store
// keeps these batches in Badger shards; docs/adr/0001-store.md and
// docs/fuzzing.md describe the format and its fuzzing budget.
package arrowipc
