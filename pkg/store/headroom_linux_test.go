package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/internal/tmpfs"
)

// TestFullDiskNeverFaults fills small tmpfs filesystems with spans through
// batches, seals and merges, with no limit, with a minimum free space and
// with a disk budget. Badger writes through memory mappings: a write the
// filesystem cannot back is a SIGBUS that ends this test binary, so the
// test passing is the headroom check holding. Every span is written or
// counted as dropped; once a ballast file goes, the next batch is written;
// the sealed shards verify and hold exactly the spans written (less those
// the budget deleted, counted).
func TestFullDiskNeverFaults(t *testing.T) {
	for _, tc := range []struct {
		name            string
		size, ballast   int64
		minFree, budget int64
		fillAt          int // fill the disk to the last byte at this round (0: never)
	}{
		{name: "no limits", size: 8 << 20, ballast: 2 << 20},
		{name: "min free", size: 12 << 20, ballast: 2 << 20, minFree: 3 << 20},
		{name: "budget", size: 8 << 20, ballast: 4 << 20, budget: 3 << 20},
		{name: "budget and a full disk", size: 8 << 20, ballast: 2 << 20, budget: 3 << 20, fillAt: 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tmpfs.Mount(t, tc.size)
			bal := filepath.Join(dir, "ballast")
			tmpfs.Fill(t, bal, tc.ballast)
			now := time.Now().Add(time.Hour) // every window finished: merges run
			w, err := OpenWriter(WriterOptions{Dir: dir, Node: "n", NoBackground: true, Window: 10 * time.Second,
				MinFree: tc.minFree, DiskBudget: tc.budget, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			g := spangen.New(spangen.Config{Seed: 11, Start: time.Now().Add(-time.Hour), Interval: 20 * time.Millisecond})
			var produced uint64
			shortRounds, maxUsed := 0, int64(0)
			round := func(i int) {
				t.Helper()
				for _, tr := range g.Next(100) {
					produced += uint64(len(tr.Spans))
					if err := w.Write(tr.Spans...); err != nil {
						t.Fatalf("round %d: write: %v", i, err)
					}
				}
				steps := []func() error{w.Flush}
				if i%2 == 1 {
					steps = append(steps, w.Seal)
				}
				if i%5 == 4 {
					steps = append(steps, w.Maintain)
				}
				for _, step := range steps {
					if err := step(); err != nil {
						t.Fatalf("round %d: %v", i, err)
					}
					used := dirSize(filepath.Join(dir, "n"))
					maxUsed = max(maxUsed, used)
					if tc.budget > 0 && used > tc.budget {
						t.Fatalf("round %d: the node directory holds %d bytes, over the budget of %d", i, used, tc.budget)
					}
					if free := tmpfs.Free(t, dir); free < tc.minFree {
						t.Fatalf("round %d: %d bytes free, below the minimum of %d", i, free, tc.minFree)
					}
				}
				st := w.Stats()
				if st.Spans+st.DroppedDisk != produced || st.DroppedError != 0 {
					t.Fatalf("round %d: %d spans written + %d dropped (%d errors), %d produced", i, st.Spans, st.DroppedDisk, st.DroppedError, produced)
				}
				if st.ShortSinceNs != 0 {
					shortRounds++
				}
			}
			for i := 0; i < 60; i++ {
				if i == tc.fillAt && i > 0 {
					tmpfs.Fill(t, bal, -1)
				}
				round(i)
			}
			st := w.Stats()
			t.Logf("after 60 rounds: %d spans produced, %d written, %d dropped, %d deleted for the budget; %d rounds short; "+
				"%d bytes free of %d, node directory at most %d bytes; %d merges waiting",
				produced, st.Spans, st.DroppedDisk, st.DeletedBudget, shortRounds, st.FreeBytes, st.FSBytes, maxUsed, st.MergesWaiting)
			switch {
			case tc.budget == 0 && (st.DroppedDisk == 0 || shortRounds < 20):
				t.Fatalf("the disk never ran short (%d spans dropped, %d rounds short): the test does not test", st.DroppedDisk, shortRounds)
			case tc.budget > 0 && st.DeletedBudget == 0:
				t.Fatal("the budget deleted no shard")
			case tc.budget > 0 && tc.fillAt == 0 && st.DroppedDisk > produced/10:
				t.Fatalf("within the budget, deleting old shards makes room: yet %d of %d spans dropped", st.DroppedDisk, produced)
			case tc.fillAt > 0 && shortRounds < 10:
				t.Fatalf("the full disk made %d rounds short", shortRounds)
			}
			// Space comes back: the next batch is written.
			os.Remove(bal)
			before := st.Spans
			round(60)
			if st = w.Stats(); st.Spans == before || st.ShortSinceNs != 0 {
				t.Fatalf("after the ballast went: %d spans written (before: %d), short since %d", st.Spans, before, st.ShortSinceNs)
			}
			for i := 61; i < 70; i++ {
				round(i)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			st = w.Stats()
			r, err := OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Verify(context.Background()); err != nil {
				t.Fatalf("verify: %v", err)
			}
			rs, err := r.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if uint64(rs.Spans)+st.DeletedBudget != st.Spans {
				t.Fatalf("the shards hold %d spans and %d were deleted for the budget; the writer wrote %d", rs.Spans, st.DeletedBudget, st.Spans)
			}
		})
	}
}

// TestStartOnFullDisk: a writer process killed with its head shard
// unsealed, the filesystem then filled to the last byte: a new writer
// opens without touching that shard (reopening it would replay its log
// into mapped files), drops new spans and says so; once space is freed,
// maintenance seals the crashed shard and new spans are written.
func TestStartOnFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 16<<20)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ZT_STORE_WRITER="+dir, "ZT_STORE_FIRST=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	nodeDir := filepath.Join(dir, "node-p")
	for { // until a batch is in an unsealed head shard
		out.Read(buf)
		m, _ := readManifest(nodeDir)
		ents, _ := os.ReadDir(nodeDir)
		heads := 0
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "h-") && (m == nil || !listedIn(m, e.Name())) && dirSize(filepath.Join(nodeDir, e.Name())) > 64<<10 {
				heads++
			}
		}
		if heads > 0 && m != nil && len(m.Shards) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the writer process sealed no shard or left no head in 20 s")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The killed collector's last capture record, as WriteCaptureStats pads it.
	os.WriteFile(filepath.Join(nodeDir, CaptureStatsName), append([]byte("{}"), bytes.Repeat([]byte{' '}, 4094)...), 0o440)
	bal := filepath.Join(dir, "ballast")
	tmpfs.Fill(t, bal, -1)
	if free := tmpfs.Free(t, dir); free != 0 {
		t.Fatalf("%d bytes still free", free)
	}
	log := &testenv.Log{}
	w, err := OpenWriter(WriterOptions{Dir: dir, Node: "node-p", NoBackground: true, Logger: slogTo(log)})
	if err != nil {
		t.Fatalf("opening on a full disk: %v", err)
	}
	st := w.Stats()
	if st.Unrecovered != 1 || st.ShortSinceNs == 0 || !strings.Contains(log.String(), "not enough disk space") {
		t.Fatalf("on a full disk: %+v; log:\n%s", st, log)
	}
	spans := bookinfo(t, 2)
	if err := w.Write(spans...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if st = w.Stats(); st.DroppedDisk != uint64(len(spans)) || st.Spans != 0 {
		t.Fatalf("on a full disk: %+v", st)
	}
	// store stats and the plugin's health read it: written over the last
	// record, in place.
	if err := w.WriteCaptureStats(CaptureStats{UpdatedNs: 1}); err != nil {
		t.Fatalf("capture stats on a full disk: %v", err)
	}
	if cs, ok, err := ReadCaptureStats(nodeDir); err != nil || !ok || cs.Store == nil || cs.Store.DroppedDisk != uint64(len(spans)) || cs.Store.ShortSinceNs == 0 {
		t.Fatalf("capture stats read back on a full disk: %v %v %+v", ok, err, cs.Store)
	}
	before := len(w.Manifest().Shards)
	os.Remove(bal)
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	if st = w.Stats(); st.Unrecovered != 0 || len(w.Manifest().Shards) != before+1 {
		t.Fatalf("after freeing space: %+v, %d shards (before: %d)", st, len(w.Manifest().Shards), before)
	}
	if err := w.Write(spans...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st = w.Stats(); st.Spans != uint64(len(spans)) || st.ShortSinceNs != 0 {
		t.Fatalf("after freeing space: %+v", st)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func listedIn(m *Manifest, name string) bool {
	for _, s := range m.Shards {
		if s.Name == name {
			return true
		}
	}
	return false
}

// TestReadOnlyDataDirectory: a writer on a read-only filesystem is a clear
// error at open, not a failure at the first batch.
func TestReadOnlyDataDirectory(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	os.Mkdir(filepath.Join(dir, "n"), 0o750)
	tmpfs.ReadOnly(t, dir)
	_, err := OpenWriter(WriterOptions{Dir: dir, Node: "n", NoBackground: true})
	if !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("OpenWriter on a read-only filesystem: %v", err)
	}
}

func slogTo(l *testenv.Log) *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
