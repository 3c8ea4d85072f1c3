package agent

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
)

// OTLPConfig configures the OTLP receiver (collector/otlpin): spans that
// OpenTelemetry SDKs on the node send, stored beside the captured ones.
type OTLPConfig struct {
	Enabled bool   `yaml:"enabled"` // default false
	GRPC    string `yaml:"grpc"`    // listen address, default :4317 ("" : no gRPC)
	HTTP    string `yaml:"http"`    // listen address, default :4318 ("" : no HTTP)
	// Netns listens inside a network namespace (a name under /run/netns or
	// a path): the node's network when the collector runs outside it.
	Netns           string `yaml:"netns"`
	MaxMessageBytes int    `yaml:"max_message_bytes"` // default 4 MiB
	MaxSpans        int    `yaml:"max_spans"`         // per request, default 10000
	MaxAttributes   int    `yaml:"max_attributes"`    // per span and resource, default 128
}

func defaultOTLP() OTLPConfig {
	return OTLPConfig{GRPC: ":4317", HTTP: ":4318", MaxMessageBytes: 4 << 20, MaxSpans: 10000, MaxAttributes: 128}
}

// otlpFlags are the receiver's flags: --otlp turns it on, the others set it
// (and turn it on).
type otlpFlags struct {
	fs                *flag.FlagSet
	on                *bool
	grpc, http, netns *string
}

func registerOTLPFlags(fs *flag.FlagSet) otlpFlags {
	return otlpFlags{fs: fs,
		on:    fs.Bool("otlp", false, "receive OTLP from OpenTelemetry SDKs on the node (gRPC :4317, HTTP :4318)"),
		grpc:  fs.String("otlp-grpc", "", "OTLP/gRPC listen address (implies --otlp; \"off\": none)"),
		http:  fs.String("otlp-http", "", "OTLP/HTTP listen address (implies --otlp; \"off\": none)"),
		netns: fs.String("otlp-netns", "", "listen for OTLP inside this network namespace"),
	}
}

// apply sets the receiver from ZEROTRACE_OTLP* variables, then the flags.
func (f otlpFlags) apply(c *OTLPConfig, env func(string) string) error {
	if v := env("ZEROTRACE_OTLP"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("ZEROTRACE_OTLP=%q: %w", v, err)
		}
		c.Enabled = on
	}
	for _, e := range []struct {
		env string
		dst *string
	}{{"ZEROTRACE_OTLP_GRPC", &c.GRPC}, {"ZEROTRACE_OTLP_HTTP", &c.HTTP}, {"ZEROTRACE_OTLP_NETNS", &c.Netns}} {
		if v := env(e.env); v != "" {
			*e.dst = v
		}
	}
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "otlp":
			c.Enabled = *f.on
		case "otlp-grpc":
			c.GRPC, c.Enabled = *f.grpc, true
		case "otlp-http":
			c.HTTP, c.Enabled = *f.http, true
		case "otlp-netns":
			c.Netns = *f.netns
		}
	})
	for _, a := range []*string{&c.GRPC, &c.HTTP} {
		if *a == "off" {
			*a = ""
		}
	}
	return nil
}

func (c *OTLPConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if c.GRPC == "" && c.HTTP == "" {
		errs = append(errs, errors.New("otlp: enabled without a grpc or http address"))
	}
	for _, a := range []struct{ name, addr string }{{"grpc", c.GRPC}, {"http", c.HTTP}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("otlp.%s %q: %w", a.name, a.addr, err))
		}
	}
	if c.MaxMessageBytes < 1024 || c.MaxSpans < 1 || c.MaxAttributes < 1 {
		errs = append(errs, errors.New("otlp: max_message_bytes (≥ 1024), max_spans and max_attributes (≥ 1) must be set"))
	}
	return errors.Join(errs...)
}
