package bucket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/summary"
)

// SummaryName is the object of a shard's summary under the shard's prefix
// (no Badger file has this name).
const SummaryName = "zerotrace-summary"

// buildSummary reads a sealed local shard's index and encodes its summary
// (pkg/summary). os.ErrNotExist: the shard directory is gone.
func (u *Uploader) buildSummary(s store.ShardEntry) ([]byte, error) {
	t0 := time.Now()
	idx, err := store.ReadShardIndex(u.nodeDir, s)
	if err != nil {
		return nil, err
	}
	b := summary.Build(summary.Input{MinNs: s.MinNs, MaxNs: s.MaxNs, Spans: s.Spans, Keys: idx.Keys,
		Namespaces: idx.Namespaces, Services: idx.Services, Workloads: idx.Workloads}, u.opt.SummaryFalsePositive).Marshal()
	u.mu.Lock()
	u.stats.SummaryBytes += uint64(len(b))
	u.stats.SummaryTime += time.Since(t0)
	u.mu.Unlock()
	return b, nil
}

// putSummary uploads a shard's summary and returns its manifest entry.
func (u *Uploader) putSummary(ctx context.Context, shard string, b []byte) (*File, error) {
	h := sha256.Sum256(b)
	f := &File{Name: SummaryName, Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])}
	if err := u.opt.Client.PutBytes(ctx, ShardPrefix(u.opt.Prefix, u.opt.Node, shard)+SummaryName, b); err != nil {
		return nil, fmt.Errorf("uploading the summary of %s: %w", shard, err)
	}
	return f, nil
}
