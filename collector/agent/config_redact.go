package agent

import (
	"flag"
	"fmt"
	"strings"

	"github.com/zerotrace/zerotrace/pkg/redact"
)

// RedactConfig says which URL parameter values the collector replaces by
// REDACTED before a span is stored (docs/capture.md "Secrets"). Userinfo,
// header values and protocol logins go whatever it says.
type RedactConfig struct {
	// Query is keys (the values of sensitive keys; the default), all
	// (every value) or none.
	Query string `yaml:"query"`
	// QueryKeys edit the default sensitive keys (redact.DefaultKeys): "name"
	// adds a key, "-name" removes one.
	QueryKeys []string `yaml:"query_keys"`
}

// compile builds the redactor of the configuration.
func (c RedactConfig) compile() (*redact.Redactor, error) {
	m, err := redact.ParseMode(c.Query)
	if err != nil {
		return nil, fmt.Errorf("redact.query: %w", err)
	}
	r, err := redact.New(m, c.QueryKeys)
	if err != nil {
		return nil, fmt.Errorf("redact.query_keys: %w", err)
	}
	return r, nil
}

// Redactor is the compiled redact configuration (Validate builds it; the
// default one before).
func (c *Config) Redactor() *redact.Redactor {
	if c.redactor == nil {
		return redact.Default()
	}
	return c.redactor
}

// redactFlags are the redact settings' flags, --redact-query and
// --redact-query-keys (comma separated).
type redactFlags struct{ query, keys *string }

func addRedactFlags(fs *flag.FlagSet) redactFlags {
	return redactFlags{
		query: fs.String("redact-query", "", "URL parameter values replaced by REDACTED: keys (sensitive keys), all, none"),
		keys:  fs.String("redact-query-keys", "", "sensitive keys added (name) or removed (-name), comma separated"),
	}
}

// apply sets the redact settings from ZEROTRACE_REDACT_QUERY and
// ZEROTRACE_REDACT_QUERY_KEYS, then from the flags: each replaces what
// came before it.
func (f redactFlags) apply(cfg *Config, env func(string) string) {
	for _, v := range []struct{ query, keys string }{
		{env("ZEROTRACE_REDACT_QUERY"), env("ZEROTRACE_REDACT_QUERY_KEYS")},
		{*f.query, *f.keys},
	} {
		if v.query != "" {
			cfg.Redact.Query = v.query
		}
		if v.keys != "" {
			cfg.Redact.QueryKeys = splitList(v.keys)
		}
	}
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}
