package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/export"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/store"
)

func init() {
	register(command{name: "export", summary: "send assembled traces to an OpenTelemetry backend over OTLP (gRPC or HTTP), as they settle", run: runExport})
}

func runExport(args []string) int {
	cfg, err := export.Load(args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		return 2
	}
	log := newLogger(cfg.LogLevel)
	setExportGC()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	src, closeSrc, err := exportSource(&cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		return 1
	}
	defer closeSrc()
	e, err := export.New(cfg, src, log)
	if err != nil {
		log.Error("export", "err", err)
		return 1
	}
	if cfg.MetricsAddr != "" {
		srv := &http.Server{Addr: cfg.MetricsAddr, Handler: exportMetrics(&e.Stats)}
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				log.Warn("export: /metrics", "err", err)
			}
		}()
		defer srv.Close()
	}
	if err := e.Run(ctx); err != nil {
		log.Error("export", "err", err)
		return 1
	}
	return 0
}

// exportSource opens the data directories, or a bucket through a mirror in
// a cache directory.
func exportSource(cfg *export.Config, log *slog.Logger) (export.Source, func(), error) {
	if cfg.ObjectStore.URL == "" {
		// Checked as the other commands do (openDirs), and the node
		// manifests read: a wrong path or a damaged manifest stops the
		// export at its start, naming it.
		r, err := openDirs(cfg.DataDirs)
		if err != nil {
			return export.Source{}, nil, err
		}
		if _, err := r.Stats(context.Background()); err != nil {
			r.Close()
			return export.Source{}, nil, err
		}
		return export.Source{Reader: r}, func() { r.Close() }, nil
	}
	b := cfg.ObjectStore
	name, prefix, err := objstore.ParseURL(b.URL)
	if err != nil {
		return export.Source{}, nil, err
	}
	creds, err := objstore.LoadCredentials(os.Getenv)
	if err != nil {
		return export.Source{}, nil, err
	}
	c, err := objstore.New(objstore.Config{Bucket: name, Endpoint: b.Endpoint, Region: b.Region, PathStyle: b.PathStyle, Credentials: creds})
	if err != nil {
		return export.Source{}, nil, err
	}
	dir, tmp := b.CacheDir, ""
	if dir == "" {
		if tmp, err = os.MkdirTemp("", "zerotrace-export-cache-"); err != nil {
			return export.Source{}, nil, err
		}
		dir = tmp
	}
	m, err := bucket.OpenMirror(bucket.MirrorOptions{Client: c, Prefix: prefix, Dir: dir, Logger: log})
	if err == nil {
		// The bucket is listed first, as by search and trace.
		if _, err = m.Stats(context.Background()); err != nil {
			err = bucketError(bucketFlags{url: b.URL, endpoint: b.Endpoint, region: b.Region, pathStyle: b.PathStyle}, err)
		}
	}
	if err != nil {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		return export.Source{}, nil, err
	}
	r, err := store.OpenReader(m.Dir())
	if err != nil {
		return export.Source{}, nil, err
	}
	prepare := func(ctx context.Context, fromNs int64) (func(), error) {
		release, err := m.Prepare(ctx, fromNs, 0)
		r.Refresh()
		return release, err
	}
	return export.Source{Reader: r, Prepare: prepare}, func() {
		r.Close()
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}, nil
}

// exportMetrics serves the exporter's counters.
func exportMetrics(s *export.Stats) http.Handler {
	reg := prometheus.NewRegistry()
	for _, m := range []struct {
		name, help string
		f          func() int64
		counter    bool
	}{
		{"zerotrace_export_spans_total", "spans the backend acknowledged", s.SpansExported.Load, true},
		{"zerotrace_export_traces_total", "trace parts the backend acknowledged", s.TracesExported.Load, true},
		{"zerotrace_export_dropped_spans_total", "spans never exported: out of the window unsent, or refused by the backend", s.SpansDropped.Load, true},
		{"zerotrace_export_retries_total", "sends tried again", s.Retries.Load, true},
		{"zerotrace_export_send_errors_total", "failed sends", s.SendErrors.Load, true},
		{"zerotrace_export_queue_full_total", "rounds that stopped assembling on a full queue", s.QueueFull.Load, true},
		{"zerotrace_export_queue_spans", "spans queued or being sent", s.QueueSpans.Load, false},
		{"zerotrace_export_window_spans", "spans kept in memory", s.WindowSpans.Load, false},
	} {
		f := m.f
		if m.counter {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, func() float64 { return float64(f()) }))
		} else {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.name, Help: m.help}, func() float64 { return float64(f()) }))
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// exportGCPercent: the exporter's heap is mostly the window, long-lived;
// collecting when the heap has grown by 2× the live data instead of 1×
// halves the marking of it, for more memory (bench export: 43k → 47k
// spans/CPU-s, peak RSS 539 → 729 MiB for 106k spans; docs/otlp.md).
// GOGC, when set, wins.
const exportGCPercent = 200

func setExportGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(exportGCPercent)
	}
}
