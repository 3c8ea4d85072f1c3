package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zerotrace/zerotrace/collector/agent"
)

func init() {
	register(command{name: "upload", summary: "ship a node's sealed shards to the object store without capturing (same flags and config as collect)", run: runUpload})
}

// newLogger logs text to stderr at a configured level (collect, upload).
func newLogger(level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// runUpload runs only the uploader `collect --object-store` runs: for a
// node directory another process writes, or to catch up after the
// collector stopped.
func runUpload(args []string) int {
	cfg, err := agent.Load(args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		return 2
	}
	if cfg.ObjectStore.URL == "" {
		fmt.Fprintln(os.Stderr, "upload: no object store: --object-store s3://bucket[/prefix] or object_store.url")
		return 2
	}
	if err := checkNodeDir(cfg.DataDir, cfg.Node); err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		return 1
	}
	log := newLogger(cfg.LogLevel)
	up, err := agent.NewUploader(cfg, os.Getenv, log)
	if err != nil {
		log.Error("upload", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("upload", "node", cfg.Node, "data_dir", cfg.DataDir)
	up.Run(ctx)
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := up.Sync(fctx); err != nil {
		log.Warn("final upload incomplete", "err", err)
	}
	st := up.Stats()
	log.Info("stopped", "shards", st.Shards, "bytes", st.Bytes, "pending", st.Pending)
	return 0
}
