package store

import (
	"encoding/binary"
	"fmt"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// ShardIndex is what a sealed shard's index holds, for the summary a
// bucket keeps beside it (pkg/summary): every indexed key value by kind,
// and the distinct namespaces, services and workloads of its spans.
type ShardIndex struct {
	Keys       map[span.KeyKind][]uint64 // distinct, ascending
	Namespaces []string
	Services   []string
	Workloads  []string
}

// KeyValue is the 8-byte value a shard indexes a key under: numbers as
// they are, request ids and trace ids hashed. Filters over a shard's
// values (ShardIndex) are asked with it.
func KeyValue(k span.Key) uint64 { return keyValue(k) }

// ReadShardIndex opens the sealed shard e in nodeDir read-only (verified
// against its recorded checksums, as a reader opens it) and reads its
// index: the key records of either layout, the values and workload
// entries. It decodes no batch.
func ReadShardIndex(nodeDir string, e ShardEntry) (*ShardIndex, error) {
	var o opener
	dir := filepath.Join(nodeDir, e.Name)
	sh, err := o.open(dir, e)
	if err != nil {
		return nil, err
	}
	defer sh.close()
	idx := &ShardIndex{Keys: map[span.KeyKind][]uint64{}}
	err = sh.view(func(txn *badger.Txn) error {
		var last [9]byte
		first := true
		err := scanAllRecords(sh, txn, runKey, func(rec []byte) error {
			// kind(1) value(8) …, sorted: a value repeats in adjacent records.
			if !first && [9]byte(rec[:9]) == last {
				return nil
			}
			first, last = false, [9]byte(rec[:9])
			kind := span.KeyKind(rec[0])
			idx.Keys[kind] = append(idx.Keys[kind], binary.BigEndian.Uint64(rec[1:9]))
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading key records: %w", err)
		}
		vals, err := shardValues(txn)
		if err != nil {
			return err
		}
		ns, svc := map[string]bool{}, map[string]bool{}
		for _, v := range vals {
			if v.Namespace != "" && !ns[v.Namespace] {
				ns[v.Namespace] = true
				idx.Namespaces = append(idx.Namespaces, v.Namespace)
			}
			if v.Service != "" && !svc[v.Service] {
				svc[v.Service] = true
				idx.Services = append(idx.Services, v.Service)
			}
		}
		wls, err := shardWorkloads(txn, "")
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, w := range wls {
			if w != "" && !seen[w] {
				seen[w] = true
				idx.Workloads = append(idx.Workloads, w)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return idx, nil
}
