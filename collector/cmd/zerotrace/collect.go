//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/zerotrace/zerotrace/collector/agent"
)

func init() {
	register(command{name: "collect", summary: "the node collector: eBPF socket capture into the span store (root or CAP_BPF+CAP_PERFMON+…)", run: runCollect})
}

func runCollect(args []string) int {
	args, prof, err := takeProfileFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "collect:", err)
		return 2
	}
	cfg, err := agent.Load(args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "collect:", err)
		return 2
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.MemoryLimitMB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	if err := prof.start(); err != nil {
		log.Error("collect", "err", err)
		return 1
	}
	defer func() {
		if err := prof.stop(); err != nil {
			log.Error("collect", "err", err)
		}
	}()
	log.Info("collect", "node", cfg.Node, "data_dir", cfg.DataDir, "memory_limit_mb", cfg.MemoryLimitMB)
	if err := agent.Run(ctx, cfg, log, func() { log.Info("ready") }); err != nil {
		log.Error("collect", "err", err)
		return 1
	}
	return 0
}
