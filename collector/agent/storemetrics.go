//go:build linux

package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerotrace/zerotrace/pkg/store"
)

// storeCollector exports the store writer's disk accounting
// (store.StoreStats): spans written, dropped and deleted, and the space.
type storeCollector struct{ w *store.Writer }

var (
	storeSpans   = prometheus.NewDesc("zerotrace_store_spans_total", "Spans written into shards.", nil, nil)
	storeDropped = prometheus.NewDesc("zerotrace_store_dropped_spans_total",
		"New spans dropped before they reached a shard, whole batches: disk = no room on the disk or in the budget, error = the write failed.", []string{"reason"}, nil)
	storeDeleted = prometheus.NewDesc("zerotrace_store_deleted_spans_total",
		"Spans of shards retention deleted: age = retention_age, budget = to stay within disk_budget.", []string{"reason"}, nil)
	storeUsed    = prometheus.NewDesc("zerotrace_store_used_bytes", "What the node directory holds, everything counted.", nil, nil)
	storeFree    = prometheus.NewDesc("zerotrace_store_free_bytes", "Free space on the data directory's filesystem.", nil, nil)
	storeBudget  = prometheus.NewDesc("zerotrace_store_budget_bytes", "The disk budget of the node directory (0: none).", nil, nil)
	storeMinFree = prometheus.NewDesc("zerotrace_store_min_free_bytes", "Free space the collector leaves on the filesystem.", nil, nil)
	storeShort   = prometheus.NewDesc("zerotrace_store_disk_short",
		"1 while new spans are dropped for lack of disk space (or budget), else 0.", nil, nil)
	storeMerges = prometheus.NewDesc("zerotrace_store_merges_waiting", "Windows whose merge waits for disk space.", nil, nil)
	storeUnrec  = prometheus.NewDesc("zerotrace_store_unrecovered_shards",
		"Head shards a crash left that wait for disk space to be sealed.", nil, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeSpans, storeDropped, storeDeleted, storeUsed, storeFree, storeBudget, storeMinFree,
		storeShort, storeMerges, storeUnrec} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.Stats()
	short := 0.0
	if st.ShortSinceNs != 0 {
		short = 1
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter(storeSpans, st.Spans)
	counter(storeDropped, st.DroppedDisk, store.DropDisk)
	counter(storeDropped, st.DroppedError, store.DropError)
	counter(storeDeleted, st.DeletedAge, "age")
	counter(storeDeleted, st.DeletedBudget, "budget")
	gauge(storeUsed, float64(st.UsedBytes))
	if st.FreeBytes >= 0 {
		gauge(storeFree, float64(st.FreeBytes))
	}
	gauge(storeBudget, float64(st.BudgetBytes))
	gauge(storeMinFree, float64(st.MinFreeBytes))
	gauge(storeShort, short)
	gauge(storeMerges, float64(st.MergesWaiting))
	gauge(storeUnrec, float64(st.Unrecovered))
}
