package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// SearchQuery selects spans for Search. Empty fields do not filter.
type SearchQuery struct {
	FromNs, ToNs int64
	Namespace    string
	Service      string
	Workload     string // span/2 shards only
	Endpoint     string
	Protocol     string // span.L7Protocol name, e.g. "http"
	Status       string // span.ResponseStatus name, e.g. "server_error"
	TapSides     []span.TapSide
	MinDuration  time.Duration
	MaxDuration  time.Duration // 0: no bound
	Limit        int           // default 100
}

// Search returns the newest spans in [FromNs, ToNs] matching q, newest first,
// at most q.Limit. It filters on the covering search index and decodes only
// the rows it returns.
func (r *Reader) Search(ctx context.Context, q SearchQuery) ([]span.Span, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	match, err := q.matcher()
	if err != nil {
		return nil, err
	}
	var hits []searchHit
	var mu sync.Mutex
	serr := r.withShards(ctx, q.FromNs, q.ToNs, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			local, err := r.searchShard(sh, txn, q, match)
			if err != nil {
				return err
			}
			mu.Lock()
			hits = append(hits, local...)
			mu.Unlock()
			return nil
		})
	})
	sort.Slice(hits, func(i, j int) bool { return hits[i].rf.start > hits[j].rf.start })
	if len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	return r.decodeHits(hits, serr)
}

// searchHit is one search index record that matched: a row of a shard.
type searchHit struct {
	sh *shard
	rf ref
}

// matcher parses the query's protocol and status names and returns the
// filter of search index records.
func (q *SearchQuery) matcher() (func(searchFields) bool, error) {
	var proto span.L7Protocol
	var status span.ResponseStatus
	var err error
	if q.Protocol != "" {
		if proto, err = span.ParseL7Protocol(q.Protocol); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	if q.Status != "" {
		if status, err = span.ParseResponseStatus(q.Status); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	svc, ep, wl := hashString(q.Service), hashString(q.Endpoint), hashString(q.Workload)
	taps := map[span.TapSide]bool{}
	for _, t := range q.TapSides {
		taps[t] = true
	}
	return func(f searchFields) bool {
		return (q.Service == "" || f.service == svc) && (q.Endpoint == "" || f.endpoint == ep) && (q.Workload == "" || f.workload == wl) &&
			(q.Protocol == "" || f.protocol == proto) && (q.Status == "" || f.status == status) &&
			(len(taps) == 0 || taps[f.tap]) && f.duration >= int64(q.MinDuration) &&
			(q.MaxDuration == 0 || f.duration <= int64(q.MaxDuration))
	}, nil
}

// searchShard scans the search index of one shard, namespace by namespace
// (the query's, else every namespace the shard holds), for at most q.Limit
// matching records per namespace.
func (r *Reader) searchShard(sh *shard, txn *badger.Txn, q SearchQuery, match func(searchFields) bool) ([]searchHit, error) {
	var nss []uint64
	if q.Namespace != "" {
		nss = []uint64{hashString(q.Namespace)}
	} else {
		vals, err := shardValues(txn)
		if err != nil {
			return nil, err
		}
		seen := map[uint64]bool{}
		for _, v := range vals {
			h := hashString(v.Namespace)
			if !seen[h] {
				seen[h] = true
				nss = append(nss, h)
			}
		}
	}
	var local []searchHit
	lo, hi := make([]byte, searchRecLen), make([]byte, searchRecLen)
	to := q.ToNs
	if to == 0 {
		to = int64(^uint64(0) >> 1)
	}
	for _, ns := range nss {
		copy(lo, searchKey(nil, ns, ref{start: q.FromNs})[1:])
		copy(hi, searchKey(nil, ns, ref{start: to, batch: ^uint32(0), row: ^uint32(0)})[1:])
		for i := searchLen - 1; i < searchRecLen; i++ {
			hi[i] = 0xff
		}
		n := 0
		err := r.scanRun(sh, txn, runSearch, lo, hi, true, func(rec []byte) (bool, error) {
			f, err := parseSearchFields(rec[searchLen-1:])
			if err != nil {
				return false, err
			}
			if match(f) {
				local = append(local, searchHit{sh, getRef(rec[8:])})
				n++
			}
			return n < q.Limit, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return local, nil
}

// decodeHits decodes the chosen rows, shard by shard, newest first; the
// error joins serr (the shards the scan could not read) with the shards
// that failed to decode.
func (r *Reader) decodeHits(hits []searchHit, serr error) ([]span.Span, error) {
	byShard := map[*shard][]ref{}
	for _, h := range hits {
		byShard[h.sh] = append(byShard[h.sh], h.rf)
	}
	var out []span.Span
	var errs []error
	if serr != nil {
		errs = append(errs, serr)
	}
	r.mu.RLock()
	for sh, refs := range byShard {
		if sh.db.IsClosed() {
			continue
		}
		err := sh.view(func(txn *badger.Txn) error {
			var err error
			out, err = r.rows(sh, txn, refs, nil, out)
			return err
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].StartNs != out[j].StartNs {
			return out[i].StartNs > out[j].StartNs
		}
		return out[i].SpanID > out[j].SpanID
	})
	return out, errors.Join(errs...)
}

// scanKeys calls f with every key of a record type.
func scanKeys(txn *badger.Txn, prefix byte, f func(key []byte) error) error {
	return scanEntryKeys(txn, prefix, false, func(k, _ []byte) error { return f(k) })
}

func shardValues(txn *badger.Txn) ([]valueEntry, error) {
	var out []valueEntry
	err := scanKeys(txn, pValues, func(k []byte) error {
		v, err := parseValuesKey(k)
		if err == nil {
			out = append(out, v)
		}
		return err
	})
	return out, err
}

func shardWorkloads(txn *badger.Txn, ns string) ([]string, error) {
	var out []string
	err := scanKeys(txn, pWorkld, func(k []byte) error {
		n, w, err := parseWorkloadKey(k)
		if err == nil && (ns == "" || n == ns) {
			out = append(out, w)
		}
		return err
	})
	return out, err
}

// ValuesQuery asks for the distinct values of one field.
type ValuesQuery struct {
	Field        string // "namespace", "service", "workload", "endpoint", "protocol"
	FromNs, ToNs int64  // 0, 0: all shards
	Namespace    string // filter (service, endpoint, protocol)
	Service      string // filter (endpoint, protocol)
}

// Values returns the sorted distinct non-empty values of a field.
func (r *Reader) Values(ctx context.Context, q ValuesQuery) ([]string, error) {
	pick := map[string]func(valueEntry) string{
		"namespace": func(v valueEntry) string { return v.Namespace },
		"service":   func(v valueEntry) string { return v.Service },
		"endpoint":  func(v valueEntry) string { return v.Endpoint },
		"protocol": func(v valueEntry) string {
			if v.Protocol == 0 {
				return ""
			}
			return v.Protocol.String()
		},
	}[q.Field]
	if pick == nil && q.Field != "workload" {
		return nil, fmt.Errorf("values: unknown field %q (namespace, service, workload, endpoint, protocol)", q.Field)
	}
	set := map[string]bool{}
	var mu sync.Mutex
	err := r.withShards(ctx, q.FromNs, q.ToNs, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			if q.Field == "workload" {
				ws, err := shardWorkloads(txn, q.Namespace)
				mu.Lock()
				defer mu.Unlock()
				for _, w := range ws {
					set[w] = true
				}
				return err
			}
			vals, err := shardValues(txn)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range vals {
				if (q.Namespace == "" || v.Namespace == q.Namespace) && (q.Service == "" || v.Service == q.Service) {
					if s := pick(v); s != "" {
						set[s] = true
					}
				}
			}
			return nil
		})
	})
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, err
}
