package pluginclient

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// pluginBinary builds ./pkg once per test run into a directory any user
// may read and run.
func pluginBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds the plugin binary")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "zerotrace-plugin-")
		if built.err != nil {
			return
		}
		os.Chmod(built.dir, 0o755)
		built.path = filepath.Join(built.dir, "gpx_zerotrace")
		build := exec.Command("go", "build", "-o", built.path, "./pkg")
		build.Dir = "../../.."
		if out, err := build.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building the plugin: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func genTraces(seed uint64, n int, start time.Time) []spangen.Trace {
	return spangen.New(spangen.Config{Seed: seed, Start: start, Interval: 50 * time.Millisecond}).Next(n)
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

func spansOn(traces []spangen.Trace, node string) []span.Span {
	var out []span.Span
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if node == "" || s.Node == node {
				out = append(out, s)
			}
		}
	}
	return out
}
