package summary

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// input is a shard of n spans' worth of keys: TCP sequences, context ids,
// request ids (hashed, as the store does) and process keys.
func input(n int, seed uint64) Input {
	r := rand.New(rand.NewPCG(seed, seed+1))
	in := Input{MinNs: 1_000, MaxNs: 61_000, Spans: int64(n), Keys: map[span.KeyKind][]uint64{},
		Namespaces: []string{"bookinfo", "kube-system"}, Services: []string{"productpage", "details"},
		Workloads: []string{"productpage-v1", "details-v1"}}
	for range n {
		in.Keys[span.KeyReqTCPSeq] = append(in.Keys[span.KeyReqTCPSeq], uint64(r.Uint32()))
		in.Keys[span.KeyRespTCPSeq] = append(in.Keys[span.KeyRespTCPSeq], uint64(r.Uint32()))
		in.Keys[span.KeySyscallTraceID] = append(in.Keys[span.KeySyscallTraceID], r.Uint64())
		in.Keys[span.KeyXRequestID] = append(in.Keys[span.KeyXRequestID], r.Uint64())
	}
	in.Keys[span.KeyProcess] = []uint64{1 << 32, 2 << 32}
	return in
}

func TestBuildHoldsEveryKey(t *testing.T) {
	in := input(5000, 1)
	s := Build(in, 0)
	b := s.Marshal()
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Marshal(), b) {
		t.Fatal("parse then marshal changed the bytes")
	}
	for kind, vals := range in.Keys {
		for _, v := range vals {
			pr := NewProbe(kind, v)
			if !s.MayHold(&pr) || !p.MayHold(&pr) {
				t.Fatalf("kind %v value %x: filter says no for a key the shard holds", kind, v)
			}
		}
	}
	// Kinds without keys hold nothing.
	pr := NewProbe(span.KeyTraceID, 7)
	if p.MayHold(&pr) {
		t.Fatal("a kind without a filter matched")
	}
	if p.MinNs != 1_000 || p.MaxNs != 61_000 || p.Spans != 5000 {
		t.Fatalf("header %d %d %d", p.MinNs, p.MaxNs, p.Spans)
	}
	if !p.MayMatch("bookinfo", "details", "") || p.MayMatch("shop", "", "") || p.MayMatch("bookinfo", "cart", "") ||
		p.MayMatch("", "", "ratings-v1") || !p.MayMatch("", "", "") {
		t.Fatal("search sets answer wrongly")
	}
}

// The false positive rate measured over keys the shard does not hold is
// within a factor 2 of the rate the filters were built for.
func TestFalsePositiveRate(t *testing.T) {
	for _, fp := range []float64{1e-2, 1e-3, 1e-4} {
		s := Build(input(20000, 2), fp)
		r := rand.New(rand.NewPCG(9, 9))
		const tests = 400000
		hits := 0
		for range tests {
			pr := NewProbe(span.KeySyscallTraceID, r.Uint64()|1<<63) // input's values are random too: collisions are 1 in 2^64
			if s.MayHold(&pr) {
				hits++
			}
		}
		got := float64(hits) / tests
		t.Logf("fp %g: measured %g (%d of %d), %d bits per key", fp, got, hits, tests, s.filters[span.KeySyscallTraceID].bf.Cap()/20000)
		if got > 2*fp {
			t.Fatalf("fp %g: measured %g", fp, got)
		}
	}
}

// Sets too large to record are left out and match everything.
func TestLargeSetsMatchAll(t *testing.T) {
	var many []string
	for i := range maxSetValues + 1 {
		many = append(many, fmt.Sprintf("ns-%d", i))
	}
	s, err := Parse(Build(Input{Namespaces: many, Services: []string{strings.Repeat("x", 256)}, Workloads: []string{"w"}}, 0).Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Namespaces.All || !s.Services.All || s.Workloads.All || !s.MayMatch("anything", "else", "w") || s.MayMatch("", "", "v") {
		t.Fatalf("sets %+v %+v %+v", s.Namespaces.All, s.Services.All, s.Workloads)
	}
}

// goldenPath is a summary built once (TestGolden with ZT_WRITE_CORPUS=1):
// if the Bloom library ever placed keys differently, summaries already in
// buckets would say "no" for keys their shards hold. This test fails first.
const goldenPath = "testdata/golden-v1.zts"

func TestGolden(t *testing.T) {
	in := input(300, 7)
	b := Build(in, 0).Marshal()
	if os.Getenv("ZT_WRITE_CORPUS") != "" {
		os.MkdirAll(filepath.Dir(goldenPath), 0o755)
		if err := os.WriteFile(goldenPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("rewrote " + goldenPath)
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatal("Build makes other bytes than the committed summary: the filter library or the format changed; a new hash scheme needs a new scheme number")
	}
	s, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	for kind, vals := range in.Keys {
		for _, v := range vals {
			if pr := NewProbe(kind, v); !s.MayHold(&pr) {
				t.Fatalf("committed summary: kind %v value %x not found", kind, v)
			}
		}
	}
}

// hexBytes reads annotated hex: "# comments" to the end of a line, spaces
// and newlines ignored.
func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const header = `
5a54534d              # "ZTSM"
01 01                 # version 1, hash scheme 1
%s                    # sections
0000000000000064      # min_ns 100
00000000000000c8      # max_ns 200
0000000000000003      # spans 3
`

func TestParseAnnotated(t *testing.T) {
	// One filter of kind 4 (x_request_id): 2 hashes, 1 key, 64 bits, one
	// word; one namespace set {"a", "bc"}.
	good := fmt.Sprintf(header, "0002") + `
46 00000012           # 'F', 18 bytes
04 02 00000001 00000040   # kind 4, 2 hashes, 1 key, 64 bits
8000000000000001      # the word
4e 00000007           # 'N', 7 bytes
0002 01 61 02 6263    # 2 values: "a", "bc"
`
	s, err := Parse(hexBytes(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if s.MinNs != 100 || s.MaxNs != 200 || s.Spans != 3 || !s.MayMatch("bc", "any", "") || s.MayMatch("b", "", "") ||
		s.Kinds()[span.KeyXRequestID] != [2]uint64{1, 64} {
		t.Fatalf("parsed %+v", s)
	}
	for _, tc := range []struct {
		name, hex, err string
	}{
		{"empty", "", "shorter than the 32-byte header"},
		{"wrong magic", "5a545358 0101 0000" + strings.Repeat("00", 24), "magic"},
		{"version 2", "5a54534d 0201 0000" + strings.Repeat("00", 24), "version 2"},
		{"scheme 2", "5a54534d 0102 0000" + strings.Repeat("00", 24), "scheme 2"},
		{"reversed range", "5a54534d 0101 0000 00000000000000c8 0000000000000064 0000000000000000", "time range"},
		{"negative spans", "5a54534d 0101 0000 0000000000000000 0000000000000000 ffffffffffffffff", "spans"},
		{"too many sections", fmt.Sprintf(header, "0041"), "65 sections"},
		{"section missing", fmt.Sprintf(header, "0001"), "want a 5-byte header"},
		{"section longer than the rest", fmt.Sprintf(header, "0001") + "4e 00000009 0001 01 61", "of 9 bytes, 4 left"},
		{"bytes after the sections", fmt.Sprintf(header, "0000") + "00", "1 bytes after the last section"},
		{"filter header short", fmt.Sprintf(header, "0001") + "46 00000003 040200", "shorter than a filter header"},
		{"filter kind 0", fmt.Sprintf(header, "0001") + "46 00000012 00 02 00000001 00000040 0000000000000000", "key kind 0"},
		{"0 hashes", fmt.Sprintf(header, "0001") + "46 00000012 04 00 00000001 00000040 0000000000000000", "0 hash functions"},
		{"33 hashes", fmt.Sprintf(header, "0001") + "46 00000012 04 21 00000001 00000040 0000000000000000", "33 hash functions"},
		{"0 bits", fmt.Sprintf(header, "0001") + "46 0000000a 04 02 00000001 00000000", "0 bits"},
		{"huge bits", fmt.Sprintf(header, "0001") + "46 0000000a 04 02 00000001 ffffffff", "4294967295 bits"},
		{"words short of the bits", fmt.Sprintf(header, "0001") + "46 00000012 04 02 00000001 00000041 0000000000000000", "want 16"},
		{"kind twice", fmt.Sprintf(header, "0002") + "46 00000012 04 02 00000001 00000040 0000000000000000" +
			"46 00000012 04 02 00000001 00000040 0000000000000000", "second filter"},
		{"set without count", fmt.Sprintf(header, "0001") + "4e 00000001 00", "want a count"},
		{"set value of length 0", fmt.Sprintf(header, "0001") + "4e 00000003 0001 00", "bad length"},
		{"set value past the end", fmt.Sprintf(header, "0001") + "4e 00000004 0001 05 61", "bad length"},
		{"set unsorted", fmt.Sprintf(header, "0001") + "4e 00000006 0002 01 62 01 61", "not after"},
		{"set repeated", fmt.Sprintf(header, "0001") + "4e 00000006 0002 01 61 01 61", "not after"},
		{"set bytes after values", fmt.Sprintf(header, "0001") + "4e 00000005 0001 01 61 00", "after the last value"},
		{"set twice", fmt.Sprintf(header, "0002") + "4e 00000004 0001 01 61 4e 00000004 0001 01 61", "set listed twice"},
		{"too many set values", fmt.Sprintf(header, "0001") + "57 00000002 0401", "1025 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(hexBytes(t, tc.hex))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
	// An unknown section is skipped.
	if _, err := Parse(hexBytes(t, fmt.Sprintf(header, "0001")+"58 00000002 abcd")); err != nil {
		t.Fatalf("unknown section: %v", err)
	}
	if _, err := Parse(make([]byte, MaxBytes+1)); !errors.Is(err, ErrFormat) {
		t.Fatalf("oversized: %v", err)
	}
}

// FuzzParse: no input panics or allocates beyond its size; what Parse
// accepts encodes back to the same bytes (unknown sections aside) and
// answers probes without panicking.
func FuzzParse(f *testing.F) {
	f.Add(Build(input(50, 3), 0).Marshal())
	f.Add(Build(Input{MinNs: 5, MaxNs: 5}, 0).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		if s.MaxNs < s.MinNs || s.Spans < 0 {
			t.Fatalf("accepted range %d..%d, %d spans", s.MinNs, s.MaxNs, s.Spans)
		}
		for k := range s.Kinds() {
			pr := NewProbe(k, binary.BigEndian.Uint64(append(b, make([]byte, 8)...)))
			s.MayHold(&pr)
		}
		s.MayMatch("a", "b", "c")
		again, err := Parse(s.Marshal())
		if err != nil {
			t.Fatalf("re-encoded summary refused: %v", err)
		}
		if !bytes.Equal(again.Marshal(), s.Marshal()) {
			t.Fatal("re-encoding is not stable")
		}
	})
}

// BenchmarkParse: the summary of a one-minute shard of 3,000 spans.
func BenchmarkParse(b *testing.B) {
	raw := Build(input(3000, 4), 0).Marshal()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMayHold: one probe against one summary (a cold trace query
// makes tens of thousands).
func BenchmarkMayHold(b *testing.B) {
	s := Build(input(3000, 4), 0)
	pr := NewProbe(span.KeyReqTCPSeq, 12345)
	for b.Loop() {
		s.MayHold(&pr)
	}
}

// BenchmarkBuild: summarizing a one-minute shard of 3,000 spans (the
// uploader does it once per shard).
func BenchmarkBuild(b *testing.B) {
	in := input(3000, 4)
	b.ReportAllocs()
	for b.Loop() {
		Build(in, 0).Marshal()
	}
}
