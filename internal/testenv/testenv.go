// Package testenv decides what a test does when the machine lacks something
// it needs (root, a binary, a kernel feature).
//
// CI runs as root with everything installed, so a skip there is a bug: a
// test that cannot run fails, unless ZEROTRACE_ALLOW_SKIP is set (a developer
// without root, say), in which case it skips with the reason.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// AllowSkip reports whether tests may skip for a missing requirement.
func AllowSkip() bool { return os.Getenv("ZEROTRACE_ALLOW_SKIP") != "" }

// Skip skips t when skips are allowed and fails it otherwise.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if AllowSkip() {
		t.Skip(msg)
	}
	t.Fatalf("cannot run: %s (set ZEROTRACE_ALLOW_SKIP=1 to skip instead)", msg)
}

// RequireRoot needs euid 0 (BPF, network namespaces, AF_PACKET).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root")
	}
}

// SysPython is Debian's Python (3.11, with the python3-* packages .ci/install
// adds), which tests run by its path: the python3 on the PATH may be
// another build (a pyenv's).
const SysPython = "/usr/bin/python3"

// RequireBinaries needs each named program on the PATH (bash .ci/install).
func RequireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Skip(t, "needs %s on the PATH (bash .ci/install)", n)
		}
	}
}

// Log is a log sink tests read while other goroutines or a child process
// write it: safe for concurrent use.
type Log struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write implements io.Writer.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
