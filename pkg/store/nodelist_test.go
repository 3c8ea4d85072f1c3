package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
)

// TestUsedFollowsTheNodeDirectory: what the writer counts as used follows
// the node directory batch after batch, when a listing of it is kept
// (nodelist.go): an entry another process adds is counted by the next
// batch, an entry that grows with its new size, an entry removed no more.
func TestUsedFollowsTheNodeDirectory(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(WriterOptions{Dir: dir, Node: "n", NoBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	g := spangen.New(spangen.Config{Seed: 3, Start: time.Now(), Interval: 5 * time.Millisecond})
	used := func(step string) int64 {
		t.Helper()
		for _, tr := range g.Next(2) {
			if err := w.Write(tr.Spans...); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return w.Stats().UsedBytes
	}
	junk := filepath.Join(dir, "n", "junk")
	const mib = 1 << 20
	pause := func(round int) { // lets a listing be kept (rounds 1 and 2) or not (round 0)
		if round > 0 {
			time.Sleep(racyListing + 50*time.Millisecond)
		}
	}
	for round := range 3 {
		pause(round)
		base := used("listed") // from here a listing may be kept
		if err := os.WriteFile(junk, make([]byte, mib), 0o600); err != nil {
			t.Fatal(err)
		}
		if u := used("added"); u < base+mib {
			t.Fatalf("round %d: used %d after a 1-MiB file was added to %d", round, u, base)
		}
		pause(round)
		used("listed with the file")
		f, err := os.OpenFile(junk, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, 2*mib))
		f.Close()
		if u := used("grown"); u < base+3*mib {
			t.Fatalf("round %d: used %d after the file grew to 3 MiB over %d", round, u, base)
		}
		if err := os.Remove(junk); err != nil {
			t.Fatal(err)
		}
		if u := used("removed"); u >= base+mib {
			t.Fatalf("round %d: used %d after the file was removed (%d before it)", round, u, base)
		}
	}
}

// BenchmarkRoom measures the room for a batch (roomLocked) in a node
// directory of 1,500 sealed shards (a day of one-minute windows).
func BenchmarkRoom(b *testing.B) {
	dir := b.TempDir()
	w, err := OpenWriter(WriterOptions{Dir: dir, Node: "n", NoBackground: true})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	for i := range 1500 {
		name := fmt.Sprintf("w-%020d", i)
		if err := os.Mkdir(filepath.Join(w.nodeDir, name), 0o755); err != nil {
			b.Fatal(err)
		}
		w.manifest.Shards = append(w.manifest.Shards, ShardEntry{Name: name, Bytes: 1 << 20})
	}
	time.Sleep(racyListing + 50*time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	for b.Loop() {
		w.roomLocked()
	}
}
