//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zerotrace/zerotrace/collector/ebpf"
	"github.com/zerotrace/zerotrace/collector/packet"
	"github.com/zerotrace/zerotrace/collector/proc"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// Run collects until ctx is done, then flushes and seals. ready, if not nil,
// is called once the capture is attached.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func()) error {
	up, err := NewUploader(cfg, os.Getenv, log)
	if err != nil {
		return err
	}
	var keep func(string) bool
	if up != nil {
		keep = func(shard string) bool { return !up.Uploaded(shard) } // local copies go only once uploaded
	}
	w, err := openStore(cfg, keep, log)
	if err != nil {
		return err
	}
	upCtx, stopUpload := context.WithCancel(context.Background())
	defer stopUpload()
	upDone := make(chan struct{})
	if up != nil {
		go func() { up.Run(upCtx); close(upDone) }()
	} else {
		close(upDone)
	}
	wl, err := startWorkloads(ctx, &cfg, log)
	if err != nil {
		w.Close()
		return err
	}
	sink := &spanSink{w: w, wl: wl, reused: newRepeatCounter(cfg.RepeatedKeys, log), namespace: cfg.Namespace, log: log}
	rows, wait := w.Batching()
	q := newSpanQueue(spanQueueMax, rows, wait, sink.write)
	emit := skipOTLPTraffic(cfg.OTLP, q.put)
	capture, err := startEBPF(&cfg, emit, log)
	if err != nil {
		stopAll(nil, nil, q, w)
		return err
	}
	pcap, err := startPackets(&cfg, emit, log)
	if err != nil {
		stopAll(capture, nil, q, w)
		return err
	}

	reg := prometheus.NewRegistry()
	if pcap != nil {
		reg.MustRegister(packetCollector{pcap})
	}
	otlpRecv, err := startOTLP(&cfg, emit, log, reg)
	if err != nil {
		stopAll(capture, pcap, q, w)
		return err
	}
	reg.MustRegister(repeatCollector{sink.reused})
	reg.MustRegister(storeCollector{w})
	sink.register(reg)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerotrace_store_shards", Help: "Sealed shards of this node."},
		func() float64 { return float64(len(w.Manifest().Shards)) }))
	if up != nil {
		registerUploadMetrics(reg, up)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerotrace_workload_pods", Help: "Pods of the node known to the workload metadata."},
		func() float64 { return float64(wl.idx.Len()) }))
	if capture != nil {
		registerEBPFMetrics(reg, capture)
	}
	srv, err := serveMetrics(cfg.MetricsAddr, reg, log)
	if err != nil {
		stopAll(capture, pcap, q, w)
		return err
	}
	started := time.Now()
	statsCtx, stopStats := context.WithCancel(context.Background())
	statsDone := make(chan struct{})
	go func() { writeCaptureStats(statsCtx, w, capture, pcap, started, log); close(statsDone) }()
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	log.Info("shutting down: flushing")
	stopStats()
	<-statsDone
	var errs []error
	if srv != nil {
		srv.Close()
	}
	if pcap != nil {
		errs = append(errs, pcap.Close())
	}
	if capture != nil {
		errs = append(errs, capture.Close())
	}
	if otlpRecv != nil {
		errs = append(errs, otlpRecv.Close())
	}
	q.close()
	errs = append(errs, w.Close())
	// After the last batch and seal: the record counts every span.
	if err := w.WriteCaptureStats(captureStats(capture, pcap, started)); err != nil {
		log.Warn("capture stats not recorded", "err", err)
	}
	if up != nil {
		// The last sealed shard: one more round, bounded; what is left is
		// uploaded at the next start.
		stopUpload()
		<-upDone
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := up.Sync(fctx); err != nil {
			log.Warn("final upload incomplete: the rest is uploaded at the next start", "err", err)
		}
		cancel()
	}
	log.Info("stopped", "spans", sink.spans.Load())
	return errors.Join(errs...)
}

// startEBPF attaches the socket capture (nil when it is disabled).
func startEBPF(cfg *Config, emit func(*span.Span), log *slog.Logger) (*ebpf.Capture, error) {
	if !cfg.EBPF.Enabled {
		return nil, nil
	}
	scope, err := netnsInodes(cfg.EBPF.NetNS)
	if err != nil {
		return nil, err
	}
	capture, err := ebpf.Start(ebpf.Options{Node: cfg.Node, PayloadSize: cfg.EBPF.PayloadSize, RingMiB: cfg.EBPF.RingMiB, RingPoll: cfg.EBPF.RingPoll, NetNS: scope, SpanBudget: cfg.EBPF.SpanBudget,
		Timeout: cfg.EBPF.Timeout, Logger: log, Service: func(i proc.Info) string { return cfg.ServiceOf(i.Name, i.Cmdline) },
		Redact: cfg.Redactor(), TLSDisabled: !cfg.TLS.Enabled, TLSExclude: cfg.TLS.ExcludeProcesses}, emit)
	if err != nil {
		return nil, fmt.Errorf("starting the eBPF capture: %w", err)
	}
	log.Info("eBPF capture attached", "netns", scope, "payload", cfg.EBPF.PayloadSize)
	return capture, nil
}

// startPackets opens the packet capture on the configured interfaces (nil
// when none is configured).
func startPackets(cfg *Config, emit func(*span.Span), log *slog.Logger) (*packet.Capture, error) {
	if len(cfg.Packet.Interfaces) == 0 {
		return nil, nil
	}
	var ifs []packet.Interface
	for _, ic := range cfg.Packet.Interfaces {
		ns := ic.Netns
		if ns != "" && !strings.Contains(ns, "/") {
			ns = "/run/netns/" + ns
		}
		names, err := packet.MatchInterfaces(ns, ic.Pattern)
		if err != nil {
			return nil, fmt.Errorf("packet interfaces %q in %q: %w", ic.Pattern, ic.Netns, err)
		}
		for _, n := range names {
			ifs = append(ifs, packet.Interface{Netns: ns, Name: n, Role: packet.Role(ic.Role)})
		}
	}
	if len(ifs) == 0 {
		return nil, errors.New("packet capture: no interface matches the configured patterns")
	}
	pcap, err := packet.Start(packet.Options{Node: cfg.Node, Interfaces: ifs, Filter: cfg.Packet.Filter,
		Timeout: cfg.EBPF.Timeout, Logger: log, Ring: packet.Geometry{BlockSize: cfg.Packet.BlockSize, Blocks: cfg.Packet.Blocks},
		Fanout: cfg.Packet.Fanout, Redact: cfg.Redactor()}, emit)
	if err != nil {
		return nil, fmt.Errorf("starting the packet capture: %w", err)
	}
	log.Info("packet capture", "interfaces", len(ifs))
	return pcap, nil
}

// registerEBPFMetrics exports the socket capture's kernel counters,
// shedding and ring buffer lag.
func registerEBPFMetrics(reg *prometheus.Registry, capture *ebpf.Capture) {
	for _, name := range []string{"events", "drop_ringbuf", "drop_filter", "drop_scope", "drop_storage", "tls_events", "tls_no_socket", "ring_wakes", "tls_files_attached", "tls_files_failed", "tls_uprobe_links"} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_ebpf_" + name + "_total",
			Help: "eBPF capture counter " + name + " (kernel side)."}, func() float64 {
			st, err := capture.Stats()
			if err != nil {
				return 0
			}
			return float64(st[name])
		}))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_ebpf_shed_connections_total",
		Help: "Connections shed over the span budget (overload policy)."}, func() float64 { n, _ := capture.ShedStats(); return float64(n) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_ebpf_shed_events_total",
		Help: "Events of shed connections dropped."}, func() float64 { _, n := capture.ShedStats(); return float64(n) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_ebpf_gotls_files_total",
		Help: "Go executables whose crypto/tls plaintext is read (docs/tls.md)."}, func() float64 { n, _ := capture.GoTLSStats(); return float64(n) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_ebpf_gotls_failed_total",
		Help: "Go executables linking crypto/tls whose plaintext cannot be read (unknown version or layout, damaged tables)."}, func() float64 { _, n := capture.GoTLSStats(); return float64(n) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_ebpf_go_untracked_total",
		Help: "Go executables whose goroutines are not tracked (stripped, or runtime.g.goid's offset not known): their calls keep no context."}, func() float64 { return float64(capture.GoUntracked()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerotrace_ebpf_ringbuf_lag_bytes",
		Help: "Bytes waiting in the ring buffer."}, func() float64 { return float64(capture.Pending()) }))
}

// serveMetrics serves /metrics and /healthz on addr (nil when addr is
// empty).
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info("metrics", "addr", ln.Addr().String())
	return srv, nil
}

func registerUploadMetrics(reg *prometheus.Registry, up *bucket.Uploader) {
	for _, m := range []struct {
		name, help string
		counter    bool
		f          func(bucket.UploadStats) float64
	}{
		{"zerotrace_upload_shards_total", "Shards uploaded to the object store.", true, func(s bucket.UploadStats) float64 { return float64(s.Shards) }},
		{"zerotrace_upload_bytes_total", "Bytes uploaded to the object store.", true, func(s bucket.UploadStats) float64 { return float64(s.Bytes) }},
		{"zerotrace_upload_errors_total", "Failed upload rounds (each retried with backoff).", true, func(s bucket.UploadStats) float64 { return float64(s.Errors) }},
		{"zerotrace_upload_pending_shards", "Sealed shards not yet in the bucket.", false, func(s bucket.UploadStats) float64 { return float64(s.Pending) }},
		{"zerotrace_upload_lag_seconds", "Age of the oldest sealed shard not yet in the bucket.", false, func(s bucket.UploadStats) float64 { return s.Lag.Seconds() }},
	} {
		f := m.f
		if m.counter {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, func() float64 { return f(up.Stats()) }))
		} else {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.name, Help: m.help}, func() float64 { return f(up.Stats()) }))
		}
	}
}

// netnsInodes resolves namespace paths (or inode numbers) to inodes.
func netnsInodes(specs []string) ([]uint32, error) {
	var out []uint32
	for _, s := range specs {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			out = append(out, uint32(n))
			continue
		}
		p := s
		if _, err := os.Stat(p); err != nil {
			p = "/run/netns/" + s
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("netns %q: %w", s, err)
		}
		out = append(out, uint32(fi.Sys().(*syscall.Stat_t).Ino))
	}
	return out, nil
}

// spanQueueMax bounds the spans waiting for the store writer (spanQueue):
// two store batches (4096 rows by default), ~2.8 MB each at 688 bytes a span
// (raised to two batches of a larger store.batch_rows).
const spanQueueMax = 8192

func stopAll(c *ebpf.Capture, p *packet.Capture, q *spanQueue, w *store.Writer) {
	if p != nil {
		p.Close()
	}
	if c != nil {
		c.Close()
	}
	q.close()
	w.Close()
}

// packetCollector exports the per-interface counters.
type packetCollector struct{ c *packet.Capture }

var (
	pktPackets   = prometheus.NewDesc("zerotrace_packet_packets_total", "Frames captured.", []string{"iface"}, nil)
	pktBytes     = prometheus.NewDesc("zerotrace_packet_bytes_total", "Bytes captured.", []string{"iface"}, nil)
	pktDrops     = prometheus.NewDesc("zerotrace_packet_drops_total", "Frames the kernel dropped (ring full).", []string{"iface"}, nil)
	pktMalformed = prometheus.NewDesc("zerotrace_packet_malformed_total", "Frames that did not decode.", []string{"iface"}, nil)
)

func (p packetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pktPackets
	ch <- pktBytes
	ch <- pktDrops
	ch <- pktMalformed
}

func (p packetCollector) Collect(ch chan<- prometheus.Metric) {
	for name, st := range p.c.Stats() {
		ch <- prometheus.MustNewConstMetric(pktPackets, prometheus.CounterValue, float64(st.Packets), name)
		ch <- prometheus.MustNewConstMetric(pktBytes, prometheus.CounterValue, float64(st.Bytes), name)
		ch <- prometheus.MustNewConstMetric(pktDrops, prometheus.CounterValue, float64(st.KernelDrops), name)
		ch <- prometheus.MustNewConstMetric(pktMalformed, prometheus.CounterValue, float64(st.Malformed), name)
	}
}
