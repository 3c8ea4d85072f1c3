//go:build mage

// Zerotrace's build targets (go tool mage -l): the plugin SDK's targets under sdk:,
// and package, generate, test, bench and demo.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/sh"

	//mage:import sdk
	build "github.com/grafana/grafana-plugin-sdk-go/build"

	"github.com/zerotrace/zerotrace/pkg/packaging"
)

// Default builds the backend for every platform the SDK supports.
var Default = build.BuildAll

// Generate regenerates the eBPF objects and their Go bindings (needs clang-14).
func Generate() error {
	return sh.RunV("go", "generate", "./collector/ebpf/...")
}

// Test runs every test exactly as CI does.
func Test() error {
	return sh.RunV("bash", ".ci/test")
}

// Bench runs the benchmark commands, each printing figures next to their goals.
func Bench() error {
	for _, b := range [][]string{{"bench", "store"}, {"bench", "query"}, {"bench", "packets"}, {"bench", "capture"}} {
		args := append([]string{"run", "./collector/cmd/zerotrace"}, b...)
		if err := sh.RunV("go", args...); err != nil {
			return fmt.Errorf("zerotrace %s %s: %w", b[0], b[1], err)
		}
	}
	return nil
}

// Demo runs the Bookinfo demo (as root).
func Demo() error {
	return sh.RunV("bash", "demo/run")
}

// Package builds the frontend and the backends for linux, darwin and windows
// into dist/ and zips dist/ as ./zerotrace-tracing-datasource-<version>.zip,
// ready for `grafana cli --pluginUrl <zip> plugins install zerotrace-tracing-datasource`.
func Package() error {
	if err := sh.RunV("npm", "run", "build"); err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dist := filepath.Join(root, "dist")
	if err := packaging.BuildBackends(context.Background(), root, dist, packaging.Platforms); err != nil {
		return err
	}
	var meta struct {
		Info struct{ Version string } `json:"info"`
	}
	b, err := os.ReadFile(filepath.Join(dist, "plugin.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return err
	}
	out := filepath.Join(root, fmt.Sprintf("%s-%s.zip", packaging.PluginID, meta.Info.Version))
	if err := packaging.Zip(dist, out); err != nil {
		return err
	}
	if err := packaging.Check(out); err != nil {
		return fmt.Errorf("checking %s: %w", out, err)
	}
	fmt.Println("package:", out)
	return nil
}
