//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/collector/doctor"
)

func init() {
	register(command{name: "doctor", summary: "will the collector run here? kernel, BPF, capabilities, packets, cgroups, data directory, object store, Kubernetes (--json)", run: runDoctor})
}

// runDoctor checks what `collect` with the same configuration (flags,
// --config, ZEROTRACE_*) would need. Exit 1 when a check is missing
// (--fail-on node: only checks of this node, not the object store or the
// Kubernetes API, which the collector starts without and retries).
func runDoctor(args []string) int {
	jsonOut, failOn := false, "all"
	var rest []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(args[i], "-")
		switch {
		case a == "-json" || a == "json":
			jsonOut = true
		case a == "-fail-on" || a == "fail-on":
			if i+1 == len(args) {
				fmt.Fprintln(os.Stderr, "doctor: --fail-on needs all or node")
				return 2
			}
			i++
			failOn = args[i]
		case strings.HasPrefix(a, "-fail-on=") || strings.HasPrefix(a, "fail-on="):
			_, failOn, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, args[i])
		}
	}
	if failOn != "all" && failOn != "node" {
		fmt.Fprintf(os.Stderr, "doctor: --fail-on %q: want all or node\n", failOn)
		return 2
	}
	cfg, err := agent.Load(rest, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "doctor:", err)
		fmt.Fprintln(os.Stderr, "usage: zerotrace doctor [--config FILE] [collect's flags] [--json] [--fail-on all|node]")
		return 2
	}
	r := doctor.Run(context.Background(), doctor.Options{Config: cfg, Env: os.Getenv})
	failed := r.Failed(failOn == "node")
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			doctor.Report
			OK bool `json:"ok"`
		}{r, len(failed) == 0})
	} else {
		r.WriteText(os.Stdout)
	}
	if len(failed) > 0 {
		names := make([]string, len(failed))
		for i, c := range failed {
			names[i] = c.Name
		}
		fmt.Fprintf(os.Stderr, "doctor: missing: %s\n", strings.Join(names, ", "))
		return 1
	}
	return 0
}
