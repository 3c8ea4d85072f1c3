package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// rows decodes the referenced rows of one shard.
func (r *Reader) rows(sh *shard, txn *badger.Txn, refs []ref, keep func(*span.Span) bool, out []span.Span) ([]span.Span, error) {
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].batch != refs[j].batch {
			return refs[i].batch < refs[j].batch
		}
		return refs[i].row < refs[j].row
	})
	var b *arrowipc.Batch
	cur := uint32(0)
	for i, rf := range refs {
		if b == nil || rf.batch != cur {
			var err error
			if b, err = r.getBatch(sh, txn, rf.batch); err != nil {
				return out, &ShardError{sh.dir, err}
			}
			cur = rf.batch
		}
		if int(rf.row) >= b.Len() {
			return out, &ShardError{sh.dir, fmt.Errorf("index points at row %d of batch %d with %d rows", rf.row, rf.batch, b.Len())}
		}
		if i > 0 && refs[i-1] == rf {
			continue
		}
		var s span.Span
		b.Row(int(rf.row), &s)
		if keep == nil || keep(&s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Lookup returns the spans that carry any of keys and start within [fromNs,
// toNs], ordered by start time. A non-nil error lists shards that failed;
// the spans of all other shards are returned with it.
func (r *Reader) Lookup(ctx context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	want := map[span.Key]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var out []span.Span
	var mu sync.Mutex
	err := r.withShardsConcurrently(ctx, fromNs, toNs, nil, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			var refs []ref
			var lo, hi []byte
			for k := range want {
				v := keyValue(k)
				lo = corrKey(lo, k.Kind, v, ref{start: fromNs})
				hi = corrKey(hi, k.Kind, v, ref{start: toNs, batch: ^uint32(0), row: ^uint32(0)})
				err := r.scanRun(sh, txn, runKey, lo[1:], hi[1:], false, func(rec []byte) (bool, error) {
					refs = append(refs, getRef(rec[9:]))
					return true, nil
				})
				if err != nil {
					return err
				}
			}
			var ks []span.Key
			res, err := r.rows(sh, txn, refs, func(s *span.Span) bool {
				ks = s.IndexKeys(ks[:0])
				for _, k := range ks {
					if want[k] {
						return true
					}
				}
				return false
			}, nil)
			mu.Lock()
			out = append(out, res...)
			mu.Unlock()
			return err
		})
	})
	return sortDedup(out), err
}

func sortDedup(s []span.Span) []span.Span {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].StartNs != s[j].StartNs {
			return s[i].StartNs < s[j].StartNs
		}
		return s[i].SpanID < s[j].SpanID
	})
	out := s[:0]
	for i := range s {
		if i > 0 && s[i].SpanID == s[i-1].SpanID && s[i].StartNs == s[i-1].StartNs {
			continue
		}
		out = append(out, s[i])
	}
	return out
}

// Get returns the spans with the given ids. With fromNs = toNs = 0 every
// shard whose span-id range (ShardEntry.MinSpanID) may hold one of them is
// searched.
func (r *Reader) Get(ctx context.Context, fromNs, toNs int64, ids []uint64) ([]span.Span, error) {
	var out []span.Span
	mayHold := func(e *ShardEntry) bool {
		for _, id := range ids {
			if e.mayHoldID(id) {
				return true
			}
		}
		return false
	}
	var mu sync.Mutex
	err := r.withShardsConcurrently(ctx, fromNs, toNs, mayHold, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			var refs []ref
			lo, hi := make([]byte, spanIDRecLen), make([]byte, spanIDRecLen)
			for i := 8; i < spanIDRecLen; i++ {
				hi[i] = 0xff
			}
			for _, id := range ids {
				binary.BigEndian.PutUint64(lo, id)
				binary.BigEndian.PutUint64(hi, id)
				err := r.scanRun(sh, txn, runSpanID, lo, hi, false, func(rec []byte) (bool, error) {
					refs = append(refs, getRef(rec[8:]))
					return true, nil
				})
				if err != nil {
					return err
				}
			}
			res, err := r.rows(sh, txn, refs, nil, nil)
			mu.Lock()
			out = append(out, res...)
			mu.Unlock()
			return err
		})
	})
	return sortDedup(out), err
}
