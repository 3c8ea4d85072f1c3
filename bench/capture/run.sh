#!/bin/sh
# Capture overhead benchmark (issue 3). Needs root (the collector attaches
# BPF), nginx and wrk. Prints "name: value unit  (goal …)" lines.
#   bench/capture/run.sh            full run (~3 min)
#   bench/capture/run.sh --quick    CI run (~1 min)
# Extra flags go to `zerotrace bench capture` (see -h), e.g.
#   --collect-args "--config /etc/zerotrace/collect.yaml"
set -eu
cd "$(dirname "$0")/../.."
bin=$(mktemp -d /tmp/zt-bench-capture-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/zerotrace" ./collector/cmd/zerotrace
"$bin/zerotrace" bench capture "$@"
