package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoTestPackage: the collector binary (the DaemonSet's program)
// links neither Go's testing package nor the plugin backend (whose SDK
// links testing through hashicorp/go-plugin); the benchmarks' helpers and
// the SeaweedFS launcher stay free of test code.
func TestLinksNoTestPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "testing" || p == "github.com/zerotrace/zerotrace/pkg/plugin" || strings.HasPrefix(p, "github.com/zerotrace/zerotrace/internal/testenv") {
			t.Errorf("the collector binary links %s", p)
		}
	}
}
