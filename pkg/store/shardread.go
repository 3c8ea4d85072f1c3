package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// ShardError names a shard that could not be read. Queries return the
// results of every other shard together with the joined ShardErrors.
type ShardError struct {
	Shard string // shard directory
	Err   error
}

func (e *ShardError) Error() string { return fmt.Sprintf("shard %s: %v", e.Shard, e.Err) }
func (e *ShardError) Unwrap() error { return e.Err }

// UnreadNode names the node whose data the error left unread (shards live
// in <data dir>/<node>/<shard>): assembly then still trusts what it read
// of the other nodes (docs/assembly.md "Reused ids").
func (e *ShardError) UnreadNode() string { return filepath.Base(filepath.Dir(e.Shard)) }

// NodeError is a node directory whose manifest could not be read: none of
// its shards were.
type NodeError struct {
	Node string // node directory name
	Err  error
}

func (e *NodeError) Error() string      { return e.Err.Error() }
func (e *NodeError) Unwrap() error      { return e.Err }
func (e *NodeError) UnreadNode() string { return e.Node }

// shard is one sealed shard opened read-only (see opener).
type shard struct {
	dir  string // the shard's directory
	db   *badger.DB
	meta shardMeta

	dirMu sync.Mutex
	dirs  [3]*directory // layoutBlocks: run directories, read once
}

// openReadOnly (readOptions) turns Badger panics on corrupt files into errors. Panics in
// goroutines Badger starts cannot be recovered: the opener verifies the
// files before Badger sees them.
func openReadOnly(dir string, once bool) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("opening read-only: badger panicked: %v", r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil, fmt.Errorf("not a Badger directory: %w", err)
	}
	db, err = badger.Open(readOptions(dir, once))
	if err != nil {
		return nil, fmt.Errorf("opening read-only: %w", err)
	}
	return db, nil
}

func (s *shard) close() { s.db.Close() }

// view runs fn in a read transaction, turning panics (and faults on mapped
// files) into a ShardError.
func (s *shard) view(fn func(txn *badger.Txn) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ShardError{s.dir, fmt.Errorf("badger panicked: %v", r)}
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if err := s.db.View(fn); err != nil {
		var se *ShardError
		if errors.As(err, &se) {
			return err
		}
		return &ShardError{s.dir, err}
	}
	return nil
}

func (s *shard) batch(txn *badger.Txn, n uint32) (*arrowipc.Batch, error) {
	it, err := txn.Get(batchKey(n))
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", n, err)
	}
	var b *arrowipc.Batch
	err = it.Value(func(v []byte) error {
		var err error
		b, err = arrowipc.DecodeBatch(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", n, err)
	}
	return b, nil
}

// all decodes every span of the shard in batch order.
func (s *shard) all() ([]span.Span, error) {
	var out []span.Span
	err := s.view(func(txn *badger.Txn) error {
		return eachBatch(txn, func(_ uint32, b *arrowipc.Batch) error {
			out = append(out, b.All()...)
			return nil
		})
	})
	return out, err
}

// eachBatch decodes every batch of a shard in order and calls fn with it;
// the batch is released when fn returns.
func eachBatch(txn *badger.Txn, fn func(n uint32, b *arrowipc.Batch) error) error {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte{pBatch}
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		n, err := parseBatchKey(it.Item().Key())
		if err != nil {
			return err
		}
		err = it.Item().Value(func(v []byte) error {
			b, err := arrowipc.DecodeBatch(v)
			if err != nil {
				return fmt.Errorf("batch %d: %w", n, err)
			}
			defer b.Release()
			return fn(n, b)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
