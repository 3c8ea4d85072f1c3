// Package summary is the small object a bucket keeps beside each shard
// (docs/adr/0005-shard-summaries.md): what a reader needs to decide whether
// the shard can answer a query without downloading it.
//
// A summary holds the shard's time range and span count, one Bloom filter
// per correlation-key kind over the 8-byte index values of the keys the
// shard holds (the values pkg/store indexes: numbers as they are, strings
// and trace ids hashed), and the sets a search filters by: namespaces,
// services and workloads. A filter never answers "no" for a key the shard
// holds; it answers "maybe" for a key it does not hold with the false
// positive rate it was built for. A set that would be too large is left
// out, and an absent set matches every value.
//
// Summaries are read from a bucket, so Parse treats them as untrusted:
// every length, count and parameter is checked before it is used, and
// anything off is an error (FuzzParse covers it).
package summary
