package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// dayEntry is a merged one-minute shard as a writer lists it: seven files'
// checksums, one span-id range.
func dayEntry(i int) ShardEntry {
	e := ShardEntry{Name: fmt.Sprintf("w-%020d-%020d", i*60e9, i*60e9+59e9), MinNs: int64(i) * 60e9, MaxNs: int64(i)*60e9 + 59e9,
		Spans: 456_000, Batches: 30, Bytes: 27 << 20, Merged: true, SpanIDs: []IDRange{{uint64(i) << 20, uint64(i)<<20 + 456_000}}}
	for f := range 7 {
		e.Files = append(e.Files, FileSum{Name: fmt.Sprintf("%06d.sst", f+1), Size: int64(f+1) << 20,
			SHA256: fmt.Sprintf("%064x", i*7+f)})
	}
	return e
}

// asJSON decodes a manifest's bytes into plain JSON values, so that two
// encodings compare as documents, whatever their whitespace, and a field
// one of them leaves out shows.
func asJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

// TestManifestEncoderWritesTheDocument: through a writer's life — heads
// sealed, an entry changed in place (a recovered shard's checksums), a
// window's heads replaced by their merge, retention — every manifest the
// encoder writes is the document json.MarshalIndent wrote before (the
// writer's format until the eleventh round, which older writers' files
// keep), and readers parse both alike. With entries reused by name alone
// (their changes ignored) it fails.
func TestManifestEncoderWritesTheDocument(t *testing.T) {
	dir := t.TempDir()
	m := &Manifest{Version: manifestVersion, Node: `node "a" <b>`}
	var enc manifestEncoder
	check := func(step string) {
		t.Helper()
		if _, err := enc.write(dir, m); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got, err := os.ReadFile(filepath.Join(dir, ManifestName))
		if err != nil {
			t.Fatal(err)
		}
		old, err := json.MarshalIndent(m, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if g, w := asJSON(t, got), asJSON(t, old); !reflect.DeepEqual(g, w) {
			gs, _ := g.(map[string]any)["shards"].([]any)
			ws, _ := w.(map[string]any)["shards"].([]any)
			for i := range min(len(gs), len(ws)) {
				if !reflect.DeepEqual(gs[i], ws[i]) {
					t.Fatalf("%s: shard %d written is not the document's:\n got %v\nwant %v", step, i, gs[i], ws[i])
				}
			}
			t.Fatalf("%s: the manifest written is not the document:\n got %v\nwant %v", step, g, w)
		}
		pg, err := ParseManifest(got)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		po, err := ParseManifest(old)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !reflect.DeepEqual(pg, po) {
			t.Fatalf("%s: parsed differently:\n got %+v\nwant %+v", step, pg, po)
		}
		if n := bytes.Count(got, []byte("\n")); len(m.Shards) > 0 && n != len(m.Shards)+2 {
			t.Fatalf("%s: %d lines for %d shards, want one a shard", step, n, len(m.Shards))
		}
	}
	check("empty")
	for i := range 5 {
		m.Shards = append(m.Shards, dayEntry(i))
	}
	check("five shards")
	m.Shards = append(m.Shards, ShardEntry{Name: "h-1", MinNs: 5 * 60e9, MaxNs: 5*60e9 + 1, Spans: 1, Batches: 1, Bytes: 4096})
	check("a head without checksums")
	m.Shards[5].Files = []FileSum{{Name: "000001.vlog", Size: 20, SHA256: fmt.Sprintf("%064x", 99)}}
	check("its checksums recorded in place")
	m.Shards[5].Files[0].SHA256 = fmt.Sprintf("%064x", 100)
	check("a checksum changed in place")
	m.Shards[2].Bytes++
	check("a size changed")
	m.Shards[3].SpanIDs[0][1]++
	check("a span-id range changed in place")
	m.Shards[4].Merged = false
	check("merged cleared")
	m.Shards[1].Sources = []string{"h-a", "h-b"}
	check("sources added")
	m.Shards[1].Sources[1] = "h-c"
	check("a source changed in place")
	m.Shards[0].MinNs, m.Shards[0].MaxNs = 7*60e9, 7*60e9+5
	check("a range moved (the order changes)")
	m.Shards = append(m.Shards[:2], m.Shards[3:]...)
	check("a shard removed")
	e := dayEntry(2)
	e.Spans, e.Name = 1, m.Shards[1].Name
	m.Shards[1] = e
	check("an entry replaced under the same name")
	m.Shards = nil
	check("every shard removed")
}

// TestSameEntryComparesEveryField: changing any one field of a ShardEntry
// (reflect lists them, so a field added later is covered) makes it differ,
// or the encoder would write an entry's old encoding.
func TestSameEntryComparesEveryField(t *testing.T) {
	base := dayEntry(1)
	base.Sources = []string{"h-a"}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		c := cloneEntry(&base)
		f := reflect.ValueOf(&c).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Slice:
			f.Set(reflect.Append(f, f.Index(0)))
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", typ.Field(i).Name, f.Kind())
		}
		if sameEntry(&base, &c) {
			t.Errorf("field %s changed, sameEntry still says the entries are the same", typ.Field(i).Name)
		}
		if cl := cloneEntry(&base); !sameEntry(&base, &cl) {
			t.Fatal("an entry differs from its clone")
		}
	}
}

// BenchmarkWriteManifest writes a day of one-minute shards' manifest
// (1,440 entries, ~1.8 MB) once a seal: each write lists one more shard
// and drops the oldest, as a writer keeping a day does. CPU per write in
// cpu-ms/op (the fsync waits are in ns/op, not there).
func BenchmarkWriteManifest(b *testing.B) {
	dir := b.TempDir()
	m := &Manifest{Version: manifestVersion, Node: "node-a"}
	for i := range 1440 {
		m.Shards = append(m.Shards, dayEntry(i))
	}
	var enc manifestEncoder
	c0 := processCPU()
	for i := 0; b.Loop(); i++ {
		m.Shards = append(m.Shards[1:], dayEntry(1440+i))
		if _, err := enc.write(dir, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-c0).Nanoseconds())/float64(b.N)/1e6, "cpu-ms/op")
}
