package summary

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// DefaultFalsePositive is the false positive rate of each filter: the
// chance that a key the shard does not hold tests positive. The ADR gives
// the arithmetic: a cold trace query tests some tens of thousands of
// (key, shard) pairs, so 1e-4 costs a few false shard downloads per query
// at 19.2 bits per key.
const DefaultFalsePositive = 1e-4

// Limits of what Build writes and Parse accepts.
const (
	MaxBytes      = 16 << 20 // a whole summary
	maxBits       = 8 * MaxBytes
	maxHashes     = 32
	maxSetValues  = 1024 // values of one set; a larger set is left out (matches all)
	maxSetBytes   = 64 << 10
	maxValueBytes = 255
	maxSections   = 64
)

// Set is a search set: the distinct values of one field in the shard. All
// means the set was not recorded (too large, or an older summary): every
// value may be there.
type Set struct {
	All    bool
	Values []string // sorted, distinct
}

// Has reports whether v may be in the shard ("" asks for nothing: true).
func (s *Set) Has(v string) bool {
	if v == "" || s.All {
		return true
	}
	_, ok := slices.BinarySearch(s.Values, v)
	return ok
}

// Summary is one shard's summary.
type Summary struct {
	MinNs, MaxNs int64 // first and last span start
	Spans        int64
	filters      map[span.KeyKind]*filter
	Namespaces   Set
	Services     Set
	Workloads    Set
}

type filter struct {
	keys uint32 // keys added (information only)
	bf   *bloom.BloomFilter
}

// Input is what Build summarizes.
type Input struct {
	MinNs, MaxNs, Spans int64
	// Keys holds, per kind, the index values of the shard's keys
	// (store.KeyValue); repeats are fine.
	Keys                            map[span.KeyKind][]uint64
	Namespaces, Services, Workloads []string
}

// Build makes the summary of in with filters of false positive rate fp
// (0: DefaultFalsePositive).
func Build(in Input, fp float64) *Summary {
	if fp <= 0 || fp >= 1 {
		fp = DefaultFalsePositive
	}
	s := &Summary{MinNs: in.MinNs, MaxNs: in.MaxNs, Spans: in.Spans, filters: map[span.KeyKind]*filter{},
		Namespaces: makeSet(in.Namespaces), Services: makeSet(in.Services), Workloads: makeSet(in.Workloads)}
	for kind, vals := range in.Keys {
		vals = slices.Clone(vals)
		slices.Sort(vals)
		vals = slices.Compact(vals)
		if len(vals) == 0 || kind == span.KeyInvalid {
			continue
		}
		m, k := bloom.EstimateParameters(uint(len(vals)), fp)
		m = min(max(64, (m+63)/64*64), maxBits)
		k = min(max(k, 1), maxHashes)
		bf := bloom.New(m, k)
		var b [8]byte
		for _, v := range vals {
			binary.BigEndian.PutUint64(b[:], v)
			bf.Add(b[:])
		}
		s.filters[kind] = &filter{keys: uint32(min(len(vals), math.MaxUint32)), bf: bf}
	}
	return s
}

func makeSet(vals []string) Set {
	var out []string
	size := 0
	for _, v := range vals {
		if v == "" {
			continue
		}
		if len(v) > maxValueBytes {
			return Set{All: true}
		}
		out = append(out, v)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	for _, v := range out {
		size += 1 + len(v)
	}
	if len(out) > maxSetValues || size > maxSetBytes {
		return Set{All: true}
	}
	return Set{Values: out}
}

// Probe is one key, hashed once and tested against many summaries.
type Probe struct {
	Kind span.KeyKind
	locs [maxHashes]uint64
}

// NewProbe hashes the index value v of a key of kind.
func NewProbe(kind span.KeyKind, v uint64) Probe {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	p := Probe{Kind: kind}
	copy(p.locs[:], bloom.Locations(b[:], maxHashes))
	return p
}

// MayHold reports whether the shard may hold the probed key: false means
// it certainly does not.
func (s *Summary) MayHold(p *Probe) bool {
	f := s.filters[p.Kind]
	if f == nil {
		return false // no key of that kind in the shard
	}
	return f.bf.TestLocations(p.locs[:f.bf.K()])
}

// MayMatch reports whether the shard may hold spans of namespace, service
// and workload ("" matches anything).
func (s *Summary) MayMatch(namespace, service, workload string) bool {
	return s.Namespaces.Has(namespace) && s.Services.Has(service) && s.Workloads.Has(workload)
}

// Kinds lists the key kinds with a filter, with their key counts and bits.
func (s *Summary) Kinds() map[span.KeyKind][2]uint64 {
	out := map[span.KeyKind][2]uint64{}
	for k, f := range s.filters {
		out[k] = [2]uint64{uint64(f.keys), uint64(f.bf.Cap())}
	}
	return out
}
