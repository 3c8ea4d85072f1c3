package agent

import (
	"flag"
	"fmt"
	"strconv"
)

// TLSConfig says whether the plaintext of TLS library calls is read
// (docs/tls.md).
type TLSConfig struct {
	// Enabled: OpenSSL (and Go crypto/tls) calls are read (default true).
	Enabled bool `yaml:"enabled"`
	// ExcludeProcesses names processes (their comm, at most 15 bytes)
	// whose TLS calls are not read: they keep their syscall spans only.
	ExcludeProcesses []string `yaml:"exclude_processes"`
}

// validate checks the process names.
func (c TLSConfig) validate() error {
	for _, p := range c.ExcludeProcesses {
		if p == "" || len(p) > 15 {
			return fmt.Errorf("tls.exclude_processes: %q: a process name (comm) is 1 to 15 bytes", p)
		}
	}
	return nil
}

// tlsFlags are --tls and --tls-exclude-processes (comma separated).
type tlsFlags struct {
	enabled *bool
	exclude *string
}

func addTLSFlags(fs *flag.FlagSet) tlsFlags {
	return tlsFlags{
		enabled: fs.Bool("tls", true, "read the plaintext of TLS library calls (--tls=false disables)"),
		exclude: fs.String("tls-exclude-processes", "", "process names (comm) whose TLS calls are not read, comma separated"),
	}
}

// apply sets the TLS settings from ZEROTRACE_TLS_ENABLED and
// ZEROTRACE_TLS_EXCLUDE_PROCESSES, then from the flags given.
func (f tlsFlags) apply(cfg *Config, env func(string) string, fs *flag.FlagSet) error {
	if v := env("ZEROTRACE_TLS_ENABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("ZEROTRACE_TLS_ENABLED=%q: %w", v, err)
		}
		cfg.TLS.Enabled = b
	}
	if v := env("ZEROTRACE_TLS_EXCLUDE_PROCESSES"); v != "" {
		cfg.TLS.ExcludeProcesses = splitList(v)
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "tls":
			cfg.TLS.Enabled = *f.enabled
		case "tls-exclude-processes":
			cfg.TLS.ExcludeProcesses = splitList(*f.exclude)
		}
	})
	return nil
}
