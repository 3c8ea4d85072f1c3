// Package agent is the node collector's runtime (`zerotrace collect`):
// configuration (defaults → YAML → env → flags → validate), the capture
// sources, the store writer, Prometheus metrics and a shutdown that flushes.
package agent

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zerotrace/zerotrace/collector/ebpf"
	"github.com/zerotrace/zerotrace/collector/packet"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/redact"
	"github.com/zerotrace/zerotrace/pkg/repeat"
)

// Config is the collector's configuration.
type Config struct {
	Node    string `yaml:"node"`
	DataDir string `yaml:"data_dir"`
	// DataGroup (name or id) may read the sealed shards: the Grafana
	// server's group, so its plugin reads them without write access.
	DataGroup   string `yaml:"data_group"`
	MetricsAddr string `yaml:"metrics_addr"` // "" disables /metrics
	LogLevel    string `yaml:"log_level"`
	// MemoryLimitMB is the Go runtime's soft memory limit for the collector
	// (the garbage collector works harder near it); 0 = none. GOMEMLIMIT,
	// when set, is the runtime's own and wins.
	MemoryLimitMB int `yaml:"memory_limit_mb"`
	// Namespace is stamped on spans that carry none (a Kubernetes-style
	// namespace for the node's workloads; search and the dashboard filter on it).
	Namespace string `yaml:"namespace"`

	EBPF   EBPFConfig   `yaml:"ebpf"`
	Packet PacketConfig `yaml:"packet"`
	Store  StoreConfig  `yaml:"store"`
	// ObjectStore ships sealed shards to an S3-compatible bucket.
	ObjectStore ObjectStoreConfig `yaml:"object_store"`
	// OTLP receives spans from OpenTelemetry SDKs (off by default).
	OTLP OTLPConfig `yaml:"otlp"`

	// Services name processes; the first matching rule wins, else the
	// process name is the service. A process of a known pod takes its
	// workload's name instead (docs/kubernetes.md).
	Services []ServiceRule `yaml:"services"`

	// Kubernetes names spans by pod and workload from the API server.
	Kubernetes KubernetesConfig `yaml:"kubernetes"`
	// Pods maps network namespaces (and capture interfaces) to pods outside
	// Kubernetes.
	Pods []PodConfig `yaml:"pods"`
	// ProxyProcesses are regexps on process names that are sidecar proxies
	// of their pod (e.g. "^envoy$"; the demo's "^nginx").
	ProxyProcesses []string `yaml:"proxy_processes"`
	// RepeatedKeys is when an X-Request-ID or trace id counts as reused
	// (/metrics zerotrace_repeated_keys_total; docs/assembly.md).
	RepeatedKeys RepeatedKeysConfig `yaml:"repeated_keys"`
	// Redact says which URL parameter values are replaced by REDACTED.
	Redact RedactConfig `yaml:"redact"`
	// TLS says whether TLS library calls are read (docs/tls.md).
	TLS TLSConfig `yaml:"tls"`

	proxyProcesses []*regexp.Regexp
	redactor       *redact.Redactor
}

// RepeatedKeysConfig: a key one point (a process, a capture interface) sees
// on more than Exchanges exchanges within Window is reused.
type RepeatedKeysConfig struct {
	Exchanges int           `yaml:"exchanges"` // default 100
	Window    time.Duration `yaml:"window"`    // default 1m
}

// KubernetesConfig configures the workload metadata of the API server and
// the kubelet (docs/kubernetes.md).
type KubernetesConfig struct {
	Enabled     string `yaml:"enabled"`      // auto (in a pod: KUBERNETES_SERVICE_HOST set), true, false
	APIServer   string `yaml:"api_server"`   // "" = in-cluster configuration
	TokenFile   string `yaml:"token_file"`   // with api_server
	CAFile      string `yaml:"ca_file"`      // with api_server
	InsecureTLS bool   `yaml:"insecure_tls"` // with api_server: do not verify its certificate
	// KubeletURL is the fallback while the API server is unreachable, e.g.
	// https://${NODE_IP}:10250/pods (environment variables expand); "" = none.
	KubeletURL         string        `yaml:"kubelet_url"`
	KubeletTokenFile   string        `yaml:"kubelet_token_file"`
	KubeletInsecureTLS bool          `yaml:"kubelet_insecure_tls"`
	ProxyContainers    []string      `yaml:"proxy_containers"` // default: istio-proxy, linkerd-proxy, …
	DeletedGrace       time.Duration `yaml:"deleted_grace"`    // a deleted pod's names stay for late spans
}

// PodConfig maps a network namespace to a pod (outside Kubernetes).
type PodConfig struct {
	Netns        string   `yaml:"netns"`      // name under /run/netns, a path, or an inode number
	Interfaces   []string `yaml:"interfaces"` // capture interfaces that are this pod's (node side of its veth)
	Pod          string   `yaml:"pod"`
	Namespace    string   `yaml:"namespace"`     // default: the namespace setting
	Workload     string   `yaml:"workload"`      // default: the pod
	WorkloadKind string   `yaml:"workload_kind"` // default: Deployment
}

// EBPFConfig configures the socket capture.
type EBPFConfig struct {
	Enabled     bool          `yaml:"enabled"`
	PayloadSize int           `yaml:"payload_size"`
	RingMiB     int           `yaml:"ring_mib"`    // the ring buffer to user space, MiB (a power of two)
	RingPoll    time.Duration `yaml:"ring_poll"`   // how often the ring's reader wakes (1ms..1s)
	SpanBudget  float64       `yaml:"span_budget"` // spans/s before whole new connections are shed; 0 = none
	NetNS       []string      `yaml:"netns"`       // /run/netns/<name> or /proc/<pid>/ns/net paths, or inode numbers
	Timeout     time.Duration `yaml:"timeout"`
}

// PacketConfig configures the AF_PACKET capture.
type PacketConfig struct {
	Filter     string            `yaml:"filter"` // tcpdump expression; "" = TCP, UDP and their tunnels
	Interfaces []InterfaceConfig `yaml:"interfaces"`
	BlockSize  int               `yaml:"block_size"` // bytes per TPACKET_V3 ring block, a power of two
	Blocks     int               `yaml:"blocks"`     // ring blocks per interface
	// Fanout is the number of rings and reader goroutines per interface,
	// joined in a PACKET_FANOUT group that keeps both directions of a flow
	// on one ring (docs/packet.md "Fanout"); 1: one ring.
	Fanout int `yaml:"fanout"`
}

// InterfaceConfig selects capture interfaces by name pattern in a namespace.
type InterfaceConfig struct {
	Netns   string `yaml:"netns"`   // name under /run/netns or a path; "" = the collector's
	Pattern string `yaml:"pattern"` // glob, e.g. "veth*"
	Role    string `yaml:"role"`    // pod, node, local, rest; "" = infer
}

// StoreConfig configures the shard writer.
type StoreConfig struct {
	BatchRows     int           `yaml:"batch_rows"`
	BatchInterval time.Duration `yaml:"batch_interval"`
	SealInterval  time.Duration `yaml:"seal_interval"`
	RetentionAge  time.Duration `yaml:"retention_age"`
	// DiskBudget bounds what the node directory holds, in bytes, everything
	// counted; the oldest shards go to stay within it. 0: a fifth of the
	// filesystem; -1: no budget.
	DiskBudget int64 `yaml:"disk_budget"`
	// MinFree is the free space, in bytes, the collector leaves on the
	// data directory's filesystem: new spans are dropped (and counted)
	// rather than written into it. 0: 10% of the filesystem and at least
	// 1 GiB (at most a quarter of a small one); -1: none.
	MinFree int64 `yaml:"min_free"`
}

// ObjectStoreConfig configures the upload of sealed shards to a bucket.
// Credentials follow the AWS conventions (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, the shared credentials file and
// AWS_PROFILE); they are never part of the configuration.
type ObjectStoreConfig struct {
	URL                string        `yaml:"url"`      // s3://bucket[/prefix]; "" disables the upload
	Endpoint           string        `yaml:"endpoint"` // e.g. http://127.0.0.1:8333; "" = AWS S3 of Region
	Region             string        `yaml:"region"`   // default us-east-1
	PathStyle          bool          `yaml:"path_style"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"`
	CAFile             string        `yaml:"ca_file"`
	Retention          time.Duration `yaml:"retention"`       // age shards out of the bucket (0: keep)
	UploadInterval     time.Duration `yaml:"upload_interval"` // look for sealed shards this often (default 1 s)
}

// ServiceRule maps processes to a service name.
type ServiceRule struct {
	Process string `yaml:"process"` // regexp on the process name
	Cmdline string `yaml:"cmdline"` // regexp on the command line
	Service string `yaml:"service"`

	process, cmdline *regexp.Regexp
}

// Defaults is the configuration without file, env or flags.
func Defaults() Config {
	host, _ := os.Hostname()
	return Config{
		Node: host, DataDir: "/var/lib/zerotrace", MetricsAddr: "127.0.0.1:9465", LogLevel: "info", MemoryLimitMB: 200,
		EBPF:         EBPFConfig{Enabled: true, PayloadSize: 1024, RingMiB: ebpf.DefaultRingMiB, RingPoll: ebpf.DefaultRingPoll, Timeout: 10 * time.Second},
		Packet:       PacketConfig{BlockSize: packet.DefaultGeometry.BlockSize, Blocks: packet.DefaultGeometry.Blocks, Fanout: 1},
		Kubernetes:   KubernetesConfig{Enabled: "auto", KubeletTokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token", DeletedGrace: 30 * time.Second},
		Store:        StoreConfig{BatchRows: 4096, BatchInterval: time.Second, SealInterval: 2 * time.Second},
		RepeatedKeys: RepeatedKeysConfig{Exchanges: repeat.DefaultExchanges, Window: repeat.DefaultWindow},
		OTLP:         defaultOTLP(),
		TLS:          TLSConfig{Enabled: true},
	}
}

// Load builds the configuration: defaults, then the YAML file named by
// --config (or ZEROTRACE_CONFIG), then ZEROTRACE_* variables, then flags,
// then validation.
func Load(args []string, env func(string) string) (Config, error) {
	cfg := Defaults()
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	file := fs.String("config", env("ZEROTRACE_CONFIG"), "YAML configuration file")
	cf := addCoreFlags(fs)
	redactFlags := addRedactFlags(fs)
	otlpF := registerOTLPFlags(fs)
	tlsF := addTLSFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if *file != "" {
		if err := readYAML(&cfg, *file); err != nil {
			return cfg, err
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	redactFlags.apply(&cfg, env) // its environment, then its flags
	if err := cf.apply(&cfg, fs); err != nil {
		return cfg, err
	}
	if err := otlpF.apply(&cfg.OTLP, env); err != nil {
		return cfg, err
	}
	if err := tlsF.apply(&cfg, env, fs); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// readYAML decodes the configuration file over cfg; unknown keys are
// errors.
func readYAML(cfg *Config, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("parsing %s: %w", file, err)
	}
	return nil
}

// applyEnv sets what the ZEROTRACE_* variables name (the redaction and OTLP
// variables aside).
func applyEnv(cfg *Config, env func(string) string) error {
	set := func(name string, f func(string) error) error {
		if v := env(name); v != "" {
			if err := f(v); err != nil {
				return fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
		return nil
	}
	for _, e := range []struct {
		name string
		f    func(string) error
	}{
		{"ZEROTRACE_NODE", func(v string) error { cfg.Node = v; return nil }},
		{"ZEROTRACE_DATA_DIR", func(v string) error { cfg.DataDir = v; return nil }},
		{"ZEROTRACE_DATA_GROUP", func(v string) error { cfg.DataGroup = v; return nil }},
		{"ZEROTRACE_METRICS_ADDR", func(v string) error { cfg.MetricsAddr = v; return nil }},
		{"ZEROTRACE_LOG_LEVEL", func(v string) error { cfg.LogLevel = v; return nil }},
		{"ZEROTRACE_NAMESPACE", func(v string) error { cfg.Namespace = v; return nil }},
		{"ZEROTRACE_NETNS", func(v string) error { cfg.EBPF.NetNS = strings.Split(v, ","); return nil }},
		{"ZEROTRACE_PAYLOAD_SIZE", func(v string) (err error) { cfg.EBPF.PayloadSize, err = strconv.Atoi(v); return }},
		{"ZEROTRACE_RING_MIB", func(v string) (err error) { cfg.EBPF.RingMiB, err = strconv.Atoi(v); return }},
		{"ZEROTRACE_RING_POLL", func(v string) (err error) { cfg.EBPF.RingPoll, err = time.ParseDuration(v); return }},
		{"ZEROTRACE_OBJECT_STORE", func(v string) error { cfg.ObjectStore.URL = v; return nil }},
		{"ZEROTRACE_OBJECT_STORE_ENDPOINT", func(v string) error { cfg.ObjectStore.Endpoint = v; return nil }},
		{"ZEROTRACE_OBJECT_STORE_REGION", func(v string) error { cfg.ObjectStore.Region = v; return nil }},
		{"ZEROTRACE_SPAN_BUDGET", func(v string) (err error) { cfg.EBPF.SpanBudget, err = strconv.ParseFloat(v, 64); return }},
		{"ZEROTRACE_MEMORY_LIMIT_MB", func(v string) (err error) { cfg.MemoryLimitMB, err = strconv.Atoi(v); return }},
		{"ZEROTRACE_PACKET_FANOUT", func(v string) (err error) { cfg.Packet.Fanout, err = strconv.Atoi(v); return }},
		{"ZEROTRACE_DISK_BUDGET", func(v string) (err error) { cfg.Store.DiskBudget, err = strconv.ParseInt(v, 10, 64); return }},
		{"ZEROTRACE_MIN_FREE", func(v string) (err error) { cfg.Store.MinFree, err = strconv.ParseInt(v, 10, 64); return }},
		{"ZEROTRACE_KUBERNETES", func(v string) error { cfg.Kubernetes.Enabled = v; return nil }},
		{"ZEROTRACE_KUBELET_URL", func(v string) error { cfg.Kubernetes.KubeletURL = v; return nil }},
	} {
		if err := set(e.name, e.f); err != nil {
			return err
		}
	}
	return nil
}

// coreFlags are the collector's flags (the redaction and OTLP flags aside).
type coreFlags struct {
	node, dataDir, dataGroup, metrics, logLevel, namespace *string
	payload, memLimit, fanout, ringMiB                     *int
	spanBudget                                             *float64
	ringPoll                                               *time.Duration
	diskBudget, minFree                                    *int64
	netns, ifaces                                          multiFlag
	noEBPF, objPathStyle                                   *bool
	objURL, objEndpoint, objRegion                         *string
}

func addCoreFlags(fs *flag.FlagSet) *coreFlags {
	f := &coreFlags{}
	f.node = fs.String("node", "", "node name (default: host name)")
	f.dataDir = fs.String("data-dir", "", "data directory; shards go to <data-dir>/<node>/")
	f.dataGroup = fs.String("data-group", "", "group that may read the sealed shards (e.g. grafana)")
	f.metrics = fs.String("metrics-addr", "\x00", "address of /metrics (empty disables)")
	f.logLevel = fs.String("log-level", "", "debug, info, warn, error")
	f.namespace = fs.String("namespace", "", "namespace stamped on spans that carry none")
	f.payload = fs.Int("payload-size", 0, "bytes of payload captured per message (1..16383)")
	f.ringMiB = fs.Int("ring-mib", 0, "MiB of the eBPF ring buffer to user space (a power of two, 1..1024)")
	f.ringPoll = fs.Duration("ring-poll", 0, "how often the eBPF ring buffer's reader wakes (1ms..1s; default 10ms)")
	f.spanBudget = fs.Float64("span-budget", 0, "spans per second before whole new connections are shed (0: no budget)")
	f.memLimit = fs.Int("memory-limit-mb", 200, "the collector's soft memory limit in MiB (0: none)")
	f.diskBudget = fs.Int64("disk-budget", 0, "bytes the node directory may hold (0: a fifth of the filesystem; -1: none)")
	f.minFree = fs.Int64("min-free", 0, "bytes left free on the filesystem (0: 10% and at least 1 GiB; -1: none)")
	fs.Var(&f.netns, "netns", "capture only this network namespace (path or inode; repeatable)")
	fs.Var(&f.ifaces, "packet-iface", "capture packets on interfaces [NETNS/]PATTERN[=ROLE] (repeatable), e.g. node1/veth*=pod")
	f.fanout = fs.Int("packet-fanout", 0, "rings per packet interface, in one PACKET_FANOUT group (1..64)")
	f.noEBPF = fs.Bool("no-ebpf", false, "disable the socket capture")
	f.objURL = fs.String("object-store", "", "upload sealed shards to s3://bucket[/prefix]")
	f.objEndpoint = fs.String("object-store-endpoint", "", "S3 endpoint URL (default: AWS S3 of the region)")
	f.objRegion = fs.String("object-store-region", "", "S3 region (default us-east-1)")
	f.objPathStyle = fs.Bool("object-store-path-style", false, "path-style bucket addressing (MinIO, SeaweedFS, Ceph)")
	return f
}

// apply sets what the flags given on the command line name.
func (f *coreFlags) apply(cfg *Config, fs *flag.FlagSet) error {
	if *f.node != "" {
		cfg.Node = *f.node
	}
	if *f.dataDir != "" {
		cfg.DataDir = *f.dataDir
	}
	if *f.dataGroup != "" {
		cfg.DataGroup = *f.dataGroup
	}
	if *f.metrics != "\x00" {
		cfg.MetricsAddr = *f.metrics
	}
	if *f.logLevel != "" {
		cfg.LogLevel = *f.logLevel
	}
	if *f.namespace != "" {
		cfg.Namespace = *f.namespace
	}
	if *f.payload != 0 {
		cfg.EBPF.PayloadSize = *f.payload
	}
	if *f.ringMiB != 0 {
		cfg.EBPF.RingMiB = *f.ringMiB
	}
	if *f.ringPoll != 0 {
		cfg.EBPF.RingPoll = *f.ringPoll
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "span-budget":
			cfg.EBPF.SpanBudget = *f.spanBudget
		case "memory-limit-mb":
			cfg.MemoryLimitMB = *f.memLimit
		case "packet-fanout":
			cfg.Packet.Fanout = *f.fanout
		case "disk-budget":
			cfg.Store.DiskBudget = *f.diskBudget
		case "min-free":
			cfg.Store.MinFree = *f.minFree
		}
	})
	if len(f.netns) > 0 {
		cfg.EBPF.NetNS = f.netns
	}
	for _, spec := range f.ifaces {
		ic, err := parseIface(spec)
		if err != nil {
			return err
		}
		cfg.Packet.Interfaces = append(cfg.Packet.Interfaces, ic)
	}
	if *f.noEBPF {
		cfg.EBPF.Enabled = false
	}
	if *f.objURL != "" {
		cfg.ObjectStore.URL = *f.objURL
	}
	if *f.objEndpoint != "" {
		cfg.ObjectStore.Endpoint = *f.objEndpoint
	}
	if *f.objRegion != "" {
		cfg.ObjectStore.Region = *f.objRegion
	}
	if *f.objPathStyle {
		cfg.ObjectStore.PathStyle = true
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// Validate checks the configuration and compiles the service rules.
func (c *Config) Validate() error {
	var errs []error
	if c.Node == "" || strings.ContainsAny(c.Node, `/\`) {
		errs = append(errs, fmt.Errorf("node %q: want a non-empty name without slashes", c.Node))
	}
	if err := c.TLS.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if c.EBPF.SpanBudget < 0 || c.EBPF.SpanBudget != c.EBPF.SpanBudget {
		errs = append(errs, fmt.Errorf("span_budget %v: want ≥ 0 spans/s", c.EBPF.SpanBudget))
	}
	if c.Store.DiskBudget < -1 || c.Store.MinFree < -1 {
		errs = append(errs, fmt.Errorf("store.disk_budget %d, store.min_free %d: want bytes, 0 (the default) or -1 (none)", c.Store.DiskBudget, c.Store.MinFree))
	}
	if c.MemoryLimitMB < 0 {
		errs = append(errs, fmt.Errorf("memory_limit_mb %d: want ≥ 0 (0: no limit)", c.MemoryLimitMB))
	}
	if c.RepeatedKeys.Exchanges < 1 || c.RepeatedKeys.Window < time.Second {
		errs = append(errs, fmt.Errorf("repeated_keys: exchanges %d, window %v: want at least 1 and 1s", c.RepeatedKeys.Exchanges, c.RepeatedKeys.Window))
	}
	if c.EBPF.PayloadSize < 1 || c.EBPF.PayloadSize > 16383 {
		errs = append(errs, fmt.Errorf("payload_size %d: want 1..16383", c.EBPF.PayloadSize))
	}
	if err := ebpf.CheckRingMiB(c.EBPF.RingMiB); err != nil {
		errs = append(errs, err)
	}
	if err := ebpf.CheckRingPoll(c.EBPF.RingPoll); err != nil {
		errs = append(errs, err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.ObjectStore.URL != "" {
		if _, _, err := objstore.ParseURL(c.ObjectStore.URL); err != nil {
			errs = append(errs, fmt.Errorf("object_store.url: %w", err))
		}
	}
	if c.ObjectStore.Retention < 0 || c.ObjectStore.UploadInterval < 0 {
		errs = append(errs, errors.New("object_store: retention and upload_interval must not be negative"))
	}
	if err := (packet.Geometry{BlockSize: c.Packet.BlockSize, Blocks: c.Packet.Blocks}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("packet ring: %w", err))
	}
	if c.Packet.Fanout < 1 || c.Packet.Fanout > packet.MaxFanout {
		errs = append(errs, fmt.Errorf("packet.fanout %d: want 1 to %d rings per interface", c.Packet.Fanout, packet.MaxFanout))
	}
	for i, ic := range c.Packet.Interfaces {
		switch ic.Role {
		case "", "pod", "node", "local", "rest":
		default:
			errs = append(errs, fmt.Errorf("packet.interfaces[%d].role %q: want pod, node, local or rest", i, ic.Role))
		}
		if ic.Pattern == "" {
			errs = append(errs, fmt.Errorf("packet.interfaces[%d]: pattern is empty", i))
		}
	}
	switch c.Kubernetes.Enabled {
	case "", "auto", "true", "false":
	default:
		errs = append(errs, fmt.Errorf("kubernetes.enabled %q: want auto, true or false", c.Kubernetes.Enabled))
	}
	for i, p := range c.Pods {
		if p.Pod == "" || (p.Netns == "" && len(p.Interfaces) == 0) {
			errs = append(errs, fmt.Errorf("pods[%d]: want a pod and a netns or interfaces", i))
		}
	}
	var err error
	if c.redactor, err = c.Redact.compile(); err != nil {
		errs = append(errs, err)
	}
	if err := c.OTLP.validate(); err != nil {
		errs = append(errs, err)
	}
	c.proxyProcesses = nil
	for i, p := range c.ProxyProcesses {
		re, err := regexp.Compile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy_processes[%d]: %w", i, err))
			continue
		}
		c.proxyProcesses = append(c.proxyProcesses, re)
	}
	for i := range c.Services {
		r := &c.Services[i]
		if r.Service == "" || (r.Process == "" && r.Cmdline == "") {
			errs = append(errs, fmt.Errorf("services[%d]: want a service and a process or cmdline pattern", i))
			continue
		}
		if r.Process != "" {
			if r.process, err = regexp.Compile(r.Process); err != nil {
				errs = append(errs, fmt.Errorf("services[%d].process: %w", i, err))
			}
		}
		if r.Cmdline != "" {
			if r.cmdline, err = regexp.Compile(r.Cmdline); err != nil {
				errs = append(errs, fmt.Errorf("services[%d].cmdline: %w", i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ServiceOf applies the service rules to a process.
func (c *Config) ServiceOf(process, cmdline string) string {
	for _, r := range c.Services {
		if (r.process == nil || r.process.MatchString(process)) && (r.cmdline == nil || r.cmdline.MatchString(cmdline)) {
			return r.Service
		}
	}
	return process
}

// IsProxyProcess reports whether a process name matches proxy_processes.
func (c *Config) IsProxyProcess(name string) bool {
	for _, re := range c.proxyProcesses {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// parseIface reads [NETNS/]PATTERN[=ROLE].
func parseIface(s string) (InterfaceConfig, error) {
	var ic InterfaceConfig
	s, ic.Role, _ = strings.Cut(s, "=")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		ic.Netns, s = s[:i], s[i+1:]
	}
	ic.Pattern = s
	if ic.Pattern == "" {
		return ic, fmt.Errorf("--packet-iface %q: no interface pattern", s)
	}
	return ic, nil
}
