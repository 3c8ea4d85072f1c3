package trace

import (
	"context"
	"reflect"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// filled appends to out the path of each map and slice of v (walked
// through its struct fields) that holds something.
func filled(v reflect.Value, path string, out *[]string) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			filled(v.Field(i), path+"."+v.Type().Field(i).Name, out)
		}
	case reflect.Map, reflect.Slice:
		if v.Len() > 0 {
			*out = append(*out, path)
		}
	}
}

// TestScratchReset: what one assembly left in a Scratch is gone when the
// next starts — every map and slice of it, its key index's and its
// process lookups' included (walked by reflection, so a field added later
// is checked too) — and small maps are kept, not made again.
func TestScratchReset(t *testing.T) {
	// Requests with X-Request-IDs and trace ids through a proxy (the key
	// index), a mesh hop with a TLS flight, containment's lookups.
	spans := reqs(6, func(r int) reqOpts { return reqOpts{xrid: "x", trace: span.TraceID{1}, leg: true, proxy: true} })
	spans = append(spans, meshHop(spans[0].StartNs, 100, 0xfffffff0, 77_000, 40001)...)
	src := &refSource{spans: spans}
	sc := new(Scratch)
	cfg := Config{Refs: true, Scratch: sc}
	cfg.defaults()
	seen := map[string]bool{}
	for i := range src.spans {
		if _, err := AssembleFromRefs(context.Background(), src, cfg, []*span.Span{&src.spans[i]}); err != nil {
			t.Fatal(err)
		}
		var before, after []string
		filled(reflect.ValueOf(sc).Elem(), "Scratch", &before)
		for _, f := range before {
			seen[f] = true
		}
		set := reflect.ValueOf(sc.set).UnsafePointer()
		sc.reset(&cfg)
		filled(reflect.ValueOf(sc).Elem(), "Scratch", &after)
		if len(after) > 0 {
			t.Fatalf("seed %d: left after reset: %v", i, after)
		}
		if reflect.ValueOf(sc.set).UnsafePointer() != set {
			t.Fatalf("seed %d: the set's map was made again, not reused", i)
		}
	}
	if len(seen) < 9 {
		t.Fatalf("the assemblies filled only %v: the case does not test the reset", seen)
	}
	big := map[uint64]bool{}
	for i := range reuseMax + 1 {
		big[uint64(i)] = true
	}
	if m := reuse(big, 0); len(m) != 0 || reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(big).UnsafePointer() {
		t.Error("a map over reuseMax entries was kept")
	}
}
