package store

import (
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Retention by age holds back the shards Keep names (not yet uploaded);
// the disk budget does not.
func TestRetentionKeep(t *testing.T) {
	dir := t.TempDir()
	now := t0.Add(10 * time.Minute)
	w := openTestWriter(t, dir, func(o *WriterOptions) { o.Now = func() time.Time { return now } })
	spans := bookinfo(t, 2)
	for i := 0; i < 3; i++ {
		s := append([]span.Span(nil), spans[i*10:i*10+10]...)
		for j := range s {
			s[j].StartNs += int64(i) * int64(time.Minute)
		}
		w.Write(s...)
		w.Seal()
	}
	m := w.Manifest()
	w.Close()
	keep := m.Shards[1].Name
	now = t0.Add(2 * time.Hour)
	w = openTestWriter(t, dir, func(o *WriterOptions) {
		o.Now = func() time.Time { return now }
		o.RetentionAge = time.Hour
		o.Keep = func(name string) bool { return name == keep }
	})
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	if got := w.Manifest().Shards; len(got) != 1 || got[0].Name != keep {
		t.Fatalf("kept %+v, want only %s", got, keep)
	}
	w.Close()
	w = openTestWriter(t, dir, func(o *WriterOptions) {
		o.Now = func() time.Time { return now }
		o.DiskBudget = 1
		o.Keep = func(string) bool { return true }
	})
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	if got := w.Manifest().Shards; len(got) != 0 {
		t.Fatalf("disk budget kept %+v", got)
	}
	w.Close()
}
