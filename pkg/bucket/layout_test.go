package bucket

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

var goodManifest = `{"version":1,"node":"node1","updated_ns":5,"shards":[` +
	`{"name":"h-01","min_ns":1,"max_ns":2,"spans":3,"batches":1,"uploaded_ns":4,"files":[{"name":"000001.sst","size":10,"sha256":"` + sum + `"},{"name":"MANIFEST","size":0,"sha256":"` + sum + `"}]}],` +
	`"deleting":[{"name":"h-00","files":["000001.sst"],"after_ns":9}]}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil || m.Node != "node1" || len(m.Shards) != 1 || m.Shards[0].Bytes() != 10 || len(m.Deleting) != 1 {
		t.Fatalf("good manifest: %+v %v", m, err)
	}
	shard := func(s string) string { return `{"version":1,"node":"n","shards":[` + s + `]}` }
	file := func(name string, size int, sha string) string {
		n, _ := json.Marshal(name)
		return fmt.Sprintf(`{"name":"h","min_ns":1,"max_ns":2,"files":[{"name":%s,"size":%d,"sha256":%q}]}`, n, size, sha)
	}
	for _, tc := range []struct {
		name, body, err string
	}{
		{"not JSON", "<xml/>", "bad bucket manifest"},
		{"empty", "", "bad bucket manifest"},
		{"truncated", goodManifest[:len(goodManifest)/2], "bad bucket manifest"},
		{"other version", `{"version":2,"node":"n"}`, "version 2"},
		{"node with a slash", `{"version":1,"node":"../etc"}`, "node name"},
		{"node empty", `{"version":1,"node":""}`, "node name"},
		{"shard name leaves the node", shard(`{"name":"../../x","files":[]}`), "name"},
		{"shard name dot-dot", shard(`{"name":"..","files":[]}`), "name"},
		{"shard twice", shard(file("a", 1, sum) + "," + file("a", 1, sum)), "listed twice"},
		{"reversed range", shard(`{"name":"h","min_ns":5,"max_ns":2,"files":[{"name":"a","size":1,"sha256":"` + sum + `"}]}`), "inconsistent"},
		{"negative spans", shard(`{"name":"h","spans":-1,"files":[{"name":"a","size":1,"sha256":"` + sum + `"}]}`), "inconsistent"},
		{"no files", shard(`{"name":"h","files":[]}`), "0 files"},
		{"file name with a slash", shard(file("a/b", 1, sum)), "file name"},
		{"file name with NUL", shard(file("a\x00", 1, sum)), "file name"},
		{"negative size", shard(file("a", -1, sum)), "of -1 bytes"},
		{"short sum", shard(file("a", 1, "abc")), "sha256 of 3 characters"},
		{"sum not hex", shard(file("a", 1, strings.Repeat("z", 64))), "not hex"},
		{"deleting name leaves", `{"version":1,"node":"n","deleting":[{"name":"../x"}]}`, "deleting"},
		{"deleting file leaves", `{"version":1,"node":"n","deleting":[{"name":"x","files":["../../y"]}]}`, "deleting"},
		{"size as string", shard(`{"name":"h","files":[{"name":"a","size":"1","sha256":"` + sum + `"}]}`), "bad bucket manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

// FuzzParseManifest: no input panics; an accepted manifest has only names
// that stay inside their directory.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"..","files":[]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, s := range m.Shards {
			if !validName(s.Name) || len(s.Files) == 0 {
				t.Fatalf("accepted shard %q", s.Name)
			}
			for _, fl := range s.Files {
				if !validName(fl.Name) || fl.Size < 0 || len(fl.SHA256) != 64 {
					t.Fatalf("accepted file %+v", fl)
				}
			}
		}
	})
}

// BenchmarkParseManifest: a node's manifest after a day of merged
// one-minute shards (1440 shards of 6 files).
func BenchmarkParseManifest(b *testing.B) {
	m := Manifest{Version: 1, Node: "node1"}
	for i := range 1440 {
		s := Shard{Name: fmt.Sprintf("w-%020d-%020d", i, i), MinNs: int64(i), MaxNs: int64(i + 1), Spans: 1000, Batches: 1}
		for _, f := range []string{"000001.sst", "000002.sst", "000001.vlog", "KEYREGISTRY", "MANIFEST", "000003.sst"} {
			s.Files = append(s.Files, File{Name: f, Size: 123456, SHA256: sum})
		}
		m.Shards = append(m.Shards, s)
	}
	raw, _ := json.Marshal(m)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseManifest(raw); err != nil {
			b.Fatal(err)
		}
	}
}
