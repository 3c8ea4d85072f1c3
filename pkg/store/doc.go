// Package store keeps spans as Arrow record batches in Badger shards.
//
// A Writer (one per node, in the collector) buffers spans, cuts a record
// batch every BatchInterval or BatchRows, compresses it (Arrow IPC, zstd) and
// writes it as one Badger value next to fixed-width index entries: one per
// correlation key, one per span id, one search entry per span and the
// distinct namespace/service/endpoint/protocol values. The head shard is
// sealed (closed) every SealInterval and listed in the node's manifest,
// which is replaced atomically; sealed shards of a finished window are merged
// in the background into one shard with large batches; retention drops
// whole shards by age and by disk budget.
//
// A Reader (the Grafana plugin, the zerotrace command) opens only the shards
// a manifest lists, read-only, from any number of processes, and answers
// lookups by correlation key, searches and gets by span id.
//
// docs/adr/0001-store.md records the key layout, the shard lifecycle and why
// a reader never sees a half-written shard.
package store
