//go:build linux

package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/zerotrace/zerotrace/collector/ebpf"
	"github.com/zerotrace/zerotrace/collector/packet"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// captureStatsInterval is how often the capture counters are written to the
// node directory (store.CaptureStatsName).
const captureStatsInterval = 2 * time.Second

// captureStats gathers the captures' counters since started.
func captureStats(c *ebpf.Capture, p *packet.Capture, started time.Time) store.CaptureStats {
	s := store.CaptureStats{UpdatedNs: time.Now().UnixNano(), StartedNs: started.UnixNano()}
	if c != nil {
		if st, err := c.Stats(); err == nil {
			s.EBPF = &store.EBPFStats{Events: st["events"], RingbufDrops: st["drop_ringbuf"]}
		}
	}
	if p != nil {
		for name, st := range p.Stats() {
			s.Interfaces = append(s.Interfaces, store.InterfaceStats{Name: name, Packets: st.Packets, Drops: st.KernelDrops})
		}
	}
	return s
}

// writeCaptureStats records the counters every captureStatsInterval until
// ctx is done (the last write is the caller's, after the captures stop).
func writeCaptureStats(ctx context.Context, w *store.Writer, c *ebpf.Capture, p *packet.Capture, started time.Time, log *slog.Logger) {
	t := time.NewTicker(captureStatsInterval)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.WriteCaptureStats(captureStats(c, p, started)); err != nil && !warned {
			log.Warn("capture stats not recorded", "err", err)
			warned = true
		}
	}
}
