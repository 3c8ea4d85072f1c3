//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/zerotrace/zerotrace/collector/agent"
)

func init() {
	register(command{name: "collect", summary: "the node collector: eBPF socket capture into the span store (root or CAP_BPF+CAP_PERFMON+…)", run: runCollect})
}

func runCollect(args []string) int {
	cfg, err := agent.Load(args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "collect:", err)
		return 2
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("collect", "node", cfg.Node, "data_dir", cfg.DataDir)
	if err := agent.Run(ctx, cfg, log, func() { log.Info("ready") }); err != nil {
		log.Error("collect", "err", err)
		return 1
	}
	return 0
}
