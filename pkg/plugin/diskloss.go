package plugin

import (
	"fmt"
	"time"

	"github.com/zerotrace/zerotrace/pkg/store"
)

// diskStats is what the nodes' collectors recorded about their disks
// (store.CaptureStats.Store).
type diskStats struct {
	dropped uint64   // spans dropped for lack of disk space since the collectors started
	short   []string // nodes dropping new spans now: "node (since 2m)"
}

// diskLoss sums the store records of the nodes (a damaged record is named
// by captureLoss).
func diskLoss(nodes []store.NodeStats) diskStats {
	var d diskStats
	for _, n := range nodes {
		cs, ok, err := store.ReadCaptureStats(n.Dir)
		if err != nil || !ok || cs.Store == nil {
			continue
		}
		d.dropped += cs.Store.DroppedDisk
		if cs.Store.ShortSinceNs != 0 {
			d.short = append(d.short, fmt.Sprintf("%s (since %s ago)", n.Node, time.Since(time.Unix(0, cs.Store.ShortSinceNs)).Round(time.Second)))
		}
	}
	return d
}
