package export

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Protocols of the OTLP endpoint.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Config is the exporter's configuration (zerotrace export; docs/otlp.md).
type Config struct {
	// Where the shards are: data directories, or a bucket.
	DataDirs    []string     `yaml:"data_dirs"`
	ObjectStore BucketConfig `yaml:"object_store"`

	Endpoint string            `yaml:"endpoint"` // gRPC host:port or http(s)://…; HTTP: http(s)://host:port[/v1/traces]
	Protocol string            `yaml:"protocol"` // grpc (default) or http/protobuf
	Headers  map[string]string `yaml:"headers"`  // sent with every request (auth tokens)
	TLS      TLSConfig         `yaml:"tls"`
	Timeout  time.Duration     `yaml:"timeout"` // per request (default 10 s)

	// Checkpoint is the file recording what the backend acknowledged.
	Checkpoint string `yaml:"checkpoint"`
	// Quiet: a trace is exported once no span linked to it was read for
	// this long (default 15 s).
	Quiet time.Duration `yaml:"quiet"`
	// Poll is how often new shards are read (default 1 s).
	Poll time.Duration `yaml:"poll"`
	// Window is how long spans are kept after they start: for assembly,
	// for late spans to join the trace id already used, and to wait out an
	// unreachable backend; a span not exported within it is dropped and
	// counted (default 2 min).
	Window time.Duration `yaml:"window"`
	// Since, on a first start without a checkpoint, exports spans that
	// started this long ago and later (default: the window).
	Since time.Duration `yaml:"since"`
	// QueueSpans bounds the spans waiting to be sent; when it is full the
	// exporter stops assembling (the shards keep the rest) (default 20000).
	QueueSpans int `yaml:"queue_spans"`
	// BatchSpans bounds the spans of one request (default 2000).
	BatchSpans int `yaml:"batch_spans"`
	// MaxBackoff caps the wait between retries (default 5 s; the first
	// retry waits 250 ms, each next twice as long).
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxSpans bounds the spans kept in memory (default 2,000,000); beyond
	// it the oldest are dropped, unsent ones counted.
	MaxSpans    int    `yaml:"max_spans"`
	MetricsAddr string `yaml:"metrics_addr"` // "" disables /metrics
	LogLevel    string `yaml:"log_level"`
}

// TLSConfig secures the connection to the endpoint.
type TLSConfig struct {
	Insecure           bool   `yaml:"insecure"` // gRPC host:port without TLS
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"` // client certificate (mutual TLS)
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// BucketConfig reads the shards from an S3-compatible bucket (credentials
// by the AWS conventions, as zerotrace trace --object-store).
type BucketConfig struct {
	URL       string `yaml:"url"` // s3://bucket[/prefix]
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	PathStyle bool   `yaml:"path_style"`
	CacheDir  string `yaml:"cache_dir"` // default: a temporary directory
}

// Defaults are the configuration before the file, environment and flags.
func Defaults() Config {
	return Config{Protocol: ProtocolGRPC, Timeout: 10 * time.Second, Checkpoint: "/var/lib/zerotrace-export/checkpoint",
		Quiet: 15 * time.Second, Poll: time.Second, Window: 2 * time.Minute, QueueSpans: 20000, BatchSpans: 2000,
		MaxBackoff: 5 * time.Second, MaxSpans: 2_000_000, MetricsAddr: "127.0.0.1:9467", LogLevel: "info"}
}

type listFlag []string

func (m *listFlag) String() string     { return strings.Join(*m, ",") }
func (m *listFlag) Set(s string) error { *m = append(*m, s); return nil }

// Load builds the configuration: defaults, the YAML file of --config (or
// ZEROTRACE_EXPORT_CONFIG), ZEROTRACE_EXPORT_* and OTEL_EXPORTER_OTLP_*
// variables, flags, then validation.
func Load(args []string, env func(string) string) (Config, error) {
	cfg := Defaults()
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	file := fs.String("config", env("ZEROTRACE_EXPORT_CONFIG"), "YAML configuration file")
	var dirs, headers listFlag
	fs.Var(&dirs, "data-dir", "data directory (repeat for several nodes)")
	fs.Var(&headers, "header", "request header KEY=VALUE (repeatable), e.g. Authorization=Bearer …")
	str := map[string]*string{}
	for name, usage := range map[string]string{
		"endpoint": "OTLP endpoint: gRPC host:port (or http(s)://host:port), HTTP http(s)://host:port[/v1/traces]",
		"protocol": "grpc or http/protobuf", "checkpoint": "checkpoint file", "metrics-addr": "address of /metrics (empty disables)",
		"log-level": "debug, info, warn, error", "ca-file": "CA certificate (PEM) of the endpoint", "cert-file": "client certificate (PEM)",
		"key-file": "client key (PEM)", "server-name": "TLS server name", "object-store": "read the shards from s3://bucket[/prefix]",
		"object-store-endpoint": "S3 endpoint URL", "object-store-region": "S3 region",
	} {
		str[name] = fs.String(name, "\x00", usage)
	}
	dur := map[string]*time.Duration{}
	for name, usage := range map[string]string{"quiet": "export a trace when no span joined it for this long", "poll": "how often shards are read",
		"window": "how long spans are kept for late spans and retries", "since": "first start: export spans this recent",
		"timeout": "per request", "max-backoff": "longest wait between retries"} {
		dur[name] = fs.Duration(name, -1, usage)
	}
	queue := fs.Int("queue-spans", 0, "spans waiting to be sent at most")
	batch := fs.Int("batch-spans", 0, "spans per request at most")
	insecureFlag := fs.Bool("insecure", false, "gRPC without TLS")
	skipVerify := fs.Bool("insecure-skip-verify", false, "do not verify the endpoint's certificate")
	pathStyle := fs.Bool("object-store-path-style", false, "path-style bucket addressing")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("parsing %s: %w", *file, err)
		}
	}
	// Environment: OpenTelemetry's own names for the endpoint, then ours.
	for _, e := range []struct {
		name string
		dst  *string
	}{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &cfg.Endpoint}, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", &cfg.Protocol},
		{"ZEROTRACE_EXPORT_ENDPOINT", &cfg.Endpoint}, {"ZEROTRACE_EXPORT_PROTOCOL", &cfg.Protocol},
		{"ZEROTRACE_EXPORT_CHECKPOINT", &cfg.Checkpoint}, {"ZEROTRACE_OBJECT_STORE", &cfg.ObjectStore.URL},
		{"ZEROTRACE_OBJECT_STORE_ENDPOINT", &cfg.ObjectStore.Endpoint}, {"ZEROTRACE_OBJECT_STORE_REGION", &cfg.ObjectStore.Region}} {
		if v := env(e.name); v != "" {
			*e.dst = v
		}
	}
	if v := env("OTEL_EXPORTER_OTLP_TRACES_HEADERS"); v != "" {
		for _, kv := range strings.Split(v, ",") {
			headers = append([]string{strings.TrimSpace(kv)}, headers...)
		}
	}
	// Flags.
	for name, dst := range map[string]*string{"endpoint": &cfg.Endpoint, "protocol": &cfg.Protocol, "checkpoint": &cfg.Checkpoint,
		"metrics-addr": &cfg.MetricsAddr, "log-level": &cfg.LogLevel, "ca-file": &cfg.TLS.CAFile, "cert-file": &cfg.TLS.CertFile,
		"key-file": &cfg.TLS.KeyFile, "server-name": &cfg.TLS.ServerName, "object-store": &cfg.ObjectStore.URL,
		"object-store-endpoint": &cfg.ObjectStore.Endpoint, "object-store-region": &cfg.ObjectStore.Region} {
		if v := *str[name]; v != "\x00" {
			*dst = v
		}
	}
	for name, dst := range map[string]*time.Duration{"quiet": &cfg.Quiet, "poll": &cfg.Poll, "window": &cfg.Window, "since": &cfg.Since,
		"timeout": &cfg.Timeout, "max-backoff": &cfg.MaxBackoff} {
		if v := *dur[name]; v >= 0 {
			*dst = v
		}
	}
	if *queue > 0 {
		cfg.QueueSpans = *queue
	}
	if *batch > 0 {
		cfg.BatchSpans = *batch
	}
	cfg.TLS.Insecure = cfg.TLS.Insecure || *insecureFlag
	cfg.TLS.InsecureSkipVerify = cfg.TLS.InsecureSkipVerify || *skipVerify
	cfg.ObjectStore.PathStyle = cfg.ObjectStore.PathStyle || *pathStyle
	if len(dirs) > 0 {
		cfg.DataDirs = dirs
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return cfg, fmt.Errorf("header %q: want KEY=VALUE", h)
		}
		if cfg.Headers == nil {
			cfg.Headers = map[string]string{}
		}
		cfg.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	if c.Protocol == "http" {
		c.Protocol = ProtocolHTTP
	}
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("no endpoint: --endpoint host:4317 (gRPC) or http://host:4318 with --protocol http/protobuf"))
	}
	if c.Protocol != ProtocolGRPC && c.Protocol != ProtocolHTTP {
		errs = append(errs, fmt.Errorf("protocol %q: want grpc or http/protobuf", c.Protocol))
	}
	if len(c.DataDirs) == 0 && c.ObjectStore.URL == "" {
		errs = append(errs, errors.New("no shards to read: --data-dir DIR (repeatable) or --object-store s3://bucket/prefix"))
	}
	if c.Checkpoint == "" {
		errs = append(errs, errors.New("no checkpoint file: --checkpoint PATH"))
	}
	if c.Quiet <= 0 || c.Poll <= 0 || c.Timeout <= 0 || c.MaxBackoff <= 0 {
		errs = append(errs, errors.New("quiet, poll, timeout and max_backoff must be positive"))
	}
	if c.Window < c.Quiet+c.Poll {
		errs = append(errs, fmt.Errorf("window %s is shorter than quiet + poll (%s)", c.Window, c.Quiet+c.Poll))
	}
	if c.Since <= 0 || c.Since > c.Window {
		c.Since = c.Window
	}
	if c.QueueSpans <= 0 || c.BatchSpans <= 0 || c.MaxSpans <= 0 {
		errs = append(errs, errors.New("queue_spans, batch_spans and max_spans must be positive"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	return errors.Join(errs...)
}
