package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// The writer rewrites the node manifest whole at every seal (every 2 s) and
// merge, so that readers see a shard at once and whole. A node keeping a
// day of one-minute shards lists ~1,440 of them (~1.8 MB of JSON, seven
// files' checksums each): json.MarshalIndent of it took ~15 ms of CPU per
// write, three quarters of it the indentation (ADR 0004, eleventh round).
// A manifestEncoder writes one compact shard entry per line instead and
// keeps each entry's encoding while the entry does not change: a sealed
// shard's entry does not, so a write encodes the new entries and copies the
// rest. The JSON is the same document (readers of every version parse it
// with encoding/json); only its whitespace differs.
type manifestEncoder struct {
	cache map[string]encodedEntry // by shard name
}

// encodedEntry is an entry as it was encoded, and its encoding.
type encodedEntry struct {
	e ShardEntry
	b []byte
}

// encode sorts m's shards by their first span (as readers expect) and
// returns the manifest's JSON.
func (c *manifestEncoder) encode(m *Manifest) ([]byte, error) {
	sort.Slice(m.Shards, func(i, j int) bool { return m.Shards[i].MinNs < m.Shards[j].MinNs })
	node, err := json.Marshal(m.Node)
	if err != nil {
		return nil, err
	}
	next := make(map[string]encodedEntry, len(m.Shards))
	parts := make([][]byte, len(m.Shards))
	size := 64 + len(node)
	for i := range m.Shards {
		e := &m.Shards[i]
		ce, ok := c.cache[e.Name]
		if !ok || !sameEntry(&ce.e, e) {
			b, err := json.Marshal(e)
			if err != nil {
				return nil, err
			}
			ce = encodedEntry{cloneEntry(e), b}
		}
		next[e.Name] = ce
		parts[i] = ce.b
		size += len(ce.b) + 2
	}
	c.cache = next
	out := make([]byte, 0, size)
	out = fmt.Appendf(out, `{"version":%d,"node":%s,"shards":`, m.Version, node)
	if m.Shards == nil {
		return append(out, "null}\n"...), nil // as encoding/json writes a nil slice
	}
	out = append(out, '[')
	for i, p := range parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '\n')
		out = append(out, p...)
	}
	return append(out, "\n]}\n"...), nil
}

// sameEntry reports whether two entries encode alike: every field of
// ShardEntry (TestSameEntryComparesEveryField keeps it so).
func sameEntry(a, b *ShardEntry) bool {
	return a.Name == b.Name && a.MinNs == b.MinNs && a.MaxNs == b.MaxNs && a.Spans == b.Spans &&
		a.Batches == b.Batches && a.Bytes == b.Bytes && a.Merged == b.Merged &&
		slices.Equal(a.Sources, b.Sources) && slices.Equal(a.Files, b.Files) && slices.Equal(a.SpanIDs, b.SpanIDs)
}

// cloneEntry copies e without sharing its slices: the writer changes its
// entries in place (a recovered shard's checksums).
func cloneEntry(e *ShardEntry) ShardEntry {
	c := *e
	c.Sources, c.Files, c.SpanIDs = slices.Clone(e.Sources), slices.Clone(e.Files), slices.Clone(e.SpanIDs)
	return c
}
