// Package testenv forwards to internal/testenv (module root), which every
// package of the module, collector/ and demo/ included, may import.
package testenv

import (
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// AllowSkip reports whether tests may skip for a missing requirement.
func AllowSkip() bool { return testenv.AllowSkip() }

// Skip skips t when skips are allowed and fails it otherwise.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.Skip(t, format, args...)
}

// RequireRoot needs euid 0.
func RequireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
}

// RequireBinaries needs each named program on the PATH.
func RequireBinaries(t testing.TB, names ...string) {
	t.Helper()
	testenv.RequireBinaries(t, names...)
}
