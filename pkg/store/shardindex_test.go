package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// ReadShardIndex lists exactly the key values, namespaces, services and
// workloads of the spans written, in either layout.
func TestReadShardIndex(t *testing.T) {
	for _, layout := range []int{layoutBlocks, layoutEntries} {
		t.Run(map[int]string{layoutBlocks: "layout2", layoutEntries: "layout1"}[layout], func(t *testing.T) {
			defer func(l int) { writeLayout = l }(writeLayout)
			writeLayout = layout
			dir := t.TempDir()
			w := openTestWriter(t, dir, nil)
			spans := append(bookinfo(t, 5), fullSpan(0))
			spans[0].Workload = "productpage-v1"
			if err := w.Write(spans...); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			m := w.Manifest()
			idx, err := ReadShardIndex(filepath.Join(dir, "node-a"), m.Shards[0])
			if err != nil {
				t.Fatal(err)
			}
			want := map[span.KeyKind][]uint64{}
			ns, svc := map[string]bool{}, map[string]bool{}
			for _, s := range spans {
				for _, k := range s.IndexKeys(nil) {
					want[k.Kind] = append(want[k.Kind], KeyValue(k))
				}
				ns[s.Namespace], svc[s.Service] = true, true
			}
			for k, v := range want {
				slices.Sort(v)
				want[k] = slices.Compact(v)
			}
			if len(want) != len(idx.Keys) {
				t.Fatalf("kinds %d, want %d", len(idx.Keys), len(want))
			}
			for k, v := range want {
				if !slices.Equal(idx.Keys[k], v) {
					t.Fatalf("kind %v: %d values, want %d", k, len(idx.Keys[k]), len(v))
				}
			}
			delete(ns, "")
			delete(svc, "")
			if len(idx.Namespaces) != len(ns) || len(idx.Services) != len(svc) {
				t.Fatalf("namespaces %v services %v", idx.Namespaces, idx.Services)
			}
			if layout == layoutBlocks && !slices.Equal(idx.Workloads, []string{"productpage-v1"}) {
				t.Fatalf("workloads %v", idx.Workloads)
			}
			// A shard whose files differ from their sums is refused.
			e := m.Shards[0]
			e.Files = slices.Clone(e.Files)
			e.Files[0].SHA256 = e.Files[1].SHA256
			if _, err := ReadShardIndex(filepath.Join(dir, "node-a"), e); err == nil {
				t.Fatal("a shard with a wrong checksum was read")
			}
		})
	}
}

// BenchmarkReadShardIndex: what the uploader spends reading a shard's
// index for its summary — a 2-s head shard (~100 spans) and a one-minute
// shard (~3,000 spans) of one node at 50 spans/s.
func BenchmarkReadShardIndex(b *testing.B) {
	for _, n := range []int{3, 80} { // Bookinfo requests of 38 spans
		b.Run(fmt.Sprintf("%d-spans", n*38), func(b *testing.B) {
			dir := b.TempDir()
			w, err := OpenWriter(WriterOptions{Dir: dir, Node: "node-a", NoBackground: true})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Write(bookinfo(b, n)...); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			e := w.Manifest().Shards[0]
			for b.Loop() {
				if _, err := ReadShardIndex(filepath.Join(dir, "node-a"), e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
