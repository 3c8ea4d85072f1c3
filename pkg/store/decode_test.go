package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Annotated raw bytes of every index record type.
func TestIndexKeyBytes(t *testing.T) {
	k := unhex(`4b            ` + // 'K'
		`01               ` + // kind: req_tcp_seq
		`00000000 0001e240 ` + // value 123456
		`18987f06 6d1c0000 ` + // start_ns
		`00000007          ` + // batch 7
		`0000002a`) // row 42
	kind, v, r, err := parseCorrKey(k)
	if err != nil || kind != span.KeyReqTCPSeq || v != 123456 || r.batch != 7 || r.row != 42 || r.start != 0x18987f066d1c0000 {
		t.Fatalf("parseCorrKey: %v %v %v %+v", err, kind, v, r)
	}
	if got := corrKey(nil, kind, v, r); !bytes.Equal(got, k) {
		t.Fatalf("corrKey re-encodes as %x", got)
	}
	sk := unhex(`54 ` + // 'T'
		`cbf29ce484222325 ` + // namespace hash (FNV-1a of "")
		`0000000000000064 00000001 00000002`)
	ns, r, err := parseSearchKey(sk)
	if err != nil || ns != hashString("") || r.start != 100 || r.batch != 1 || r.row != 2 {
		t.Fatalf("parseSearchKey: %v %x %+v", err, ns, r)
	}
	sv := unhex(`0000000000000001 0000000000000002 ` + // service, endpoint hashes
		`02 03 06 ` + // protocol 2 = http2, status 3 = server_error, tap side 6 = s-p
		`00000000004c4b40`) // duration 5 ms
	f, err := parseSearchFields(sv)
	if err != nil || f.service != 1 || f.endpoint != 2 || f.protocol != 2 || f.status != 3 || f.tap != 6 || f.duration != 5_000_000 || f.workload != 0 {
		t.Fatalf("parseSearchFields (before span/2): %v %+v", err, f)
	}
	sv2 := append(append([]byte(nil), sv...), unhex(`00000000000000ff`)...) // + workload hash
	if f, err := parseSearchFields(sv2); err != nil || f.workload != 0xff || f.duration != 5_000_000 || !bytes.Equal(f.put(nil), sv2) {
		t.Fatalf("parseSearchFields: %v %+v", err, f)
	}
	wk := []byte("Wbookinfo\x00productpage")
	if ns, w, err := parseWorkloadKey(wk); err != nil || ns != "bookinfo" || w != "productpage" || !bytes.Equal(workloadKey(ns, w), wk) {
		t.Fatalf("parseWorkloadKey: %v %q %q", err, ns, w)
	}
	vk := []byte("Vbookinfo\x00reviews\x00GET /reviews/{id}\x00\x01")
	ve, err := parseValuesKey(vk)
	if err != nil || ve != (valueEntry{"bookinfo", "reviews", "GET /reviews/{id}", 1}) {
		t.Fatalf("parseValuesKey: %v %+v", err, ve)
	}
	if !bytes.Equal(valuesKey(ve), vk) {
		t.Fatal("valuesKey does not re-encode")
	}

	for name, bad := range map[string]func() error{
		"corr key short":       func() error { _, _, _, err := parseCorrKey(k[:25]); return err },
		"corr key wrong type":  func() error { _, _, _, err := parseCorrKey(append([]byte{'X'}, k[1:]...)); return err },
		"search key long":      func() error { _, _, err := parseSearchKey(append(sk, 0)); return err },
		"search value short":   func() error { _, err := parseSearchFields(sv[:10]); return err },
		"values key 2 fields":  func() error { _, err := parseValuesKey([]byte("Vns\x00svc\x00\x01")); return err },
		"values key 4 fields":  func() error { _, err := parseValuesKey([]byte("Va\x00b\x00c\x00d\x00\x01")); return err },
		"values key too short": func() error { _, err := parseValuesKey([]byte("V\x00")); return err },
		"batch key":            func() error { _, err := parseBatchKey([]byte("B\x00\x01")); return err },
		"search value 30":      func() error { _, err := parseSearchFields(sv2[:30]); return err },
		"workload key no sep":  func() error { _, _, err := parseWorkloadKey([]byte("Wbookinfo")); return err },
		"workload key 2 seps":  func() error { _, _, err := parseWorkloadKey([]byte("Wa\x00b\x00c")); return err },
	} {
		if err := bad(); !errors.Is(err, errKey) {
			t.Errorf("%s: error %v, want errKey", name, err)
		}
	}
}

func TestManifestBytes(t *testing.T) {
	good := `{"version":1,"node":"n","shards":[{"name":"h-1","min_ns":1,"max_ns":2,"spans":3,"batches":1,"bytes":10}]}`
	if m, err := ParseManifest([]byte(good)); err != nil || len(m.Shards) != 1 || m.Shards[0].Spans != 3 {
		t.Fatalf("good manifest: %v %+v", err, m)
	}
	for name, b := range map[string]string{
		"not json":       `{"version":1,`,
		"wrong version":  `{"version":9,"node":"n","shards":[]}`,
		"path traversal": `{"version":1,"node":"n","shards":[{"name":"../etc","min_ns":1,"max_ns":2}]}`,
		"nested path":    `{"version":1,"node":"n","shards":[{"name":"a/b","min_ns":1,"max_ns":2}]}`,
		// a backslash separates on Windows (found by FuzzManifest in CI)
		"backslash name": `{"version":1,"node":"n","shards":[{"name":"\\\\","min_ns":1,"max_ns":2}]}`,
		"backslash file": `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"..\\M","size":1,"sha256":"` + sum0 + `"}]}]}`,
		"listed twice":   `{"version":1,"node":"n","shards":[{"name":"a","min_ns":1,"max_ns":2},{"name":"a","min_ns":1,"max_ns":2}]}`,
		"range inverted": `{"version":1,"node":"n","shards":[{"name":"a","min_ns":5,"max_ns":2}]}`,
		"file path":      `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"../MANIFEST","size":1,"sha256":"` + sum0 + `"}]}]}`,
		"file twice": `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"M","size":1,"sha256":"` + sum0 +
			`"},{"name":"M","size":1,"sha256":"` + sum0 + `"}]}]}`,
		"short sha256":  `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"M","size":1,"sha256":"abcd"}]}]}`,
		"negative size": `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"M","size":-1,"sha256":"` + sum0 + `"}]}]}`,
	} {
		if _, err := ParseManifest([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// sum0 is the SHA-256 of no bytes.
const sum0 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func FuzzIndexKeys(f *testing.F) {
	f.Add(corrKey(nil, span.KeyXRequestID, 99, ref{1, 2, 3}))
	f.Add(searchKey(nil, 5, ref{7, 8, 9}))
	f.Add(searchFields{service: 1, endpoint: 2, protocol: 3, status: 4, tap: 5, duration: 6, workload: 7}.put(nil))
	f.Add(searchFields{service: 1, endpoint: 2, protocol: 3, status: 4, tap: 5, duration: 6}.put(nil)[:searchVal])
	f.Add(workloadKey("bookinfo", "productpage"))
	f.Add(valuesKey(valueEntry{"ns", "svc", "GET /", 1}))
	f.Add(batchKey(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if kind, v, r, err := parseCorrKey(b); err == nil && !bytes.Equal(corrKey(nil, kind, v, r), b) {
			t.Fatalf("correlation key %x does not round-trip", b)
		}
		if ns, r, err := parseSearchKey(b); err == nil && !bytes.Equal(searchKey(nil, ns, r), b) {
			t.Fatalf("search key %x does not round-trip", b)
		}
		if f, err := parseSearchFields(b); err == nil && !bytes.Equal(f.put(nil)[:len(b)], b) {
			t.Fatalf("search value %x does not round-trip", b)
		}
		if ns, w, err := parseWorkloadKey(b); err == nil && !bytes.Equal(workloadKey(ns, w), b) {
			t.Fatalf("workload key %q does not round-trip", b)
		}
		if v, err := parseValuesKey(b); err == nil && !bytes.Equal(valuesKey(v), b) {
			t.Fatalf("values key %q does not round-trip", b)
		}
		if n, err := parseBatchKey(b); err == nil && !bytes.Equal(batchKey(n), b) {
			t.Fatalf("batch key %x does not round-trip", b)
		}
	})
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"h-1","min_ns":1,"max_ns":2,"spans":3}]}`))
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"w-1","merged":true,"sources":["h-1","h-2"]}]}`))
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"h-1","files":[{"name":"MANIFEST","size":0,"sha256":"` + sum0 + `"}]}]}`))
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"h-1","span_ids":["0001000000000002-0001000000000009","0002000000000000-0002000000000000"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, s := range m.Shards {
			if strings.ContainsAny(s.Name, `/\`) || s.Name == ".." {
				t.Fatalf("accepted shard name %q", s.Name)
			}
			if len(s.SpanIDs) > maxIDRanges {
				t.Fatalf("accepted %d span id ranges", len(s.SpanIDs))
			}
			for _, r := range s.SpanIDs {
				if r[1] < r[0] {
					t.Fatalf("accepted inverted span id range %v", r)
				}
			}
			for _, f := range s.Files {
				if strings.ContainsAny(f.Name, `/\`) || f.Name == ".." || len(f.SHA256) != 64 || f.Size < 0 {
					t.Fatalf("accepted file %+v", f)
				}
			}
		}
	})
}

func BenchmarkParseIndexKeys(b *testing.B) {
	k := corrKey(nil, span.KeyReqTCPSeq, 1, ref{1, 2, 3})
	for i := 0; i < b.N; i++ {
		if _, _, _, err := parseCorrKey(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseManifest(b *testing.B) {
	m := []byte(`{"version":1,"node":"n","shards":[{"name":"h-1","min_ns":1,"max_ns":2,"spans":3,"batches":1,"bytes":10,` +
		`"span_ids":["0001000000000002-0001000000000009","0002000000000000-0002000000000000"]}]}`)
	for i := 0; i < b.N; i++ {
		if _, err := ParseManifest(m); err != nil {
			b.Fatal(err)
		}
	}
}
