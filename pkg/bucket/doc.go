// Package bucket ships sealed shards to an S3-compatible bucket and reads
// them back.
//
// Layout under the configured prefix (docs/adr/0003-object-store.md):
//
//	<prefix>manifests/<node>.json            the node's bucket manifest, written last
//	<prefix>shards/<node>/<shard>/<file>     the files of one sealed shard
//
// An Uploader (in the collector) watches a node directory's MANIFEST.json,
// uploads every listed shard's files, then rewrites the node's bucket
// manifest with the shard, its files' sizes and SHA-256 sums; a reader sees
// a shard only once all its objects exist. Merges replace their sources in
// the bucket manifest; replaced and expired shards' objects are deleted a
// grace period later, so readers holding an older manifest can finish.
//
// A Mirror (in the Grafana plugin) lists the node manifests, downloads the
// shards that overlap a query's window into a local cache bounded in bytes
// (least recently used out), verifies every file's size and SHA-256, and
// keeps a MANIFEST.json per node in the cache listing the verified shards,
// so store.Reader opens them read-only like any data directory.
package bucket
