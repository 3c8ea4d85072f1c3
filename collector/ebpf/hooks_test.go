//go:build linux

package ebpf

import (
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// waitNames are the event-loop wait tracepoints (bpf/socket/wait.h).
var waitNames = []string{"sys_enter_epoll_wait", "sys_enter_epoll_pwait", "sys_enter_epoll_pwait2",
	"sys_enter_poll", "sys_enter_ppoll", "sys_enter_select", "sys_enter_pselect6"}

// TestWaitHooksPerConfig: the wait tracepoints are attached only when some
// process's TLS is not read (the only reader of their flag is forward.go,
// for such processes). Checked against the kernel's own list of links: the
// tracepoints that a program of this capture is attached to.
func TestWaitHooksPerConfig(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		opt   Options
		waits bool
	}{
		{"default", Options{}, false},
		{"tls-disabled", Options{TLSDisabled: true}, true},
		{"tls-exclude", Options{TLSExclude: []string{"envoy"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Node = "hooks-test"
			tc.opt.NetNS = []uint32{1} // scoped to no namespace: it sees nothing
			c, err := Start(tc.opt, func(*span.Span) {})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got := attachedTracepoints(t, programIDs(&c.objs.SocketPrograms))
			for _, name := range append([]string{"sys_enter_read", "sys_exit_write", "sys_enter_connect"}, waitNames...) {
				want := tc.waits || !slices.Contains(waitNames, name)
				if slices.Contains(got, name) != want {
					t.Errorf("%s attached: %v, want %v (attached: %v)", name, !want, want, got)
				}
			}
			if n := len(tracepoints) + len(waitTracepoints); tc.waits && len(got) != n || !tc.waits && len(got) != len(tracepoints) {
				t.Errorf("%d tracepoints attached: %v", len(got), got)
			}
		})
	}
}

// attachedTracepoints lists the tracepoints the kernel has a link of one of
// the programs progs on.
func attachedTracepoints(t *testing.T, progs []ebpf.ProgramID) []string {
	t.Helper()
	var names []string
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || !slices.Contains(progs, info.Program) || info.Type != link.PerfEventType {
			continue
		}
		if pe := info.PerfEvent(); pe != nil && pe.Tracepoint() != nil {
			names = append(names, pe.Tracepoint().Tracepoint)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}
