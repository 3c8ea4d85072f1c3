//go:build linux

package ebpf

import "testing"

// The runtime matrix (runtime_test.go) runs against the real capture of the
// whole host; its assertions select spans by per-test markers in the paths.
func init() {
	startCapture = func(t *testing.T) (spanSource, error) { return startLive(t, Options{Node: "runtime-test"}) }
}
