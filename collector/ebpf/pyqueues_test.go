//go:build linux

package ebpf

import (
	"testing"

	"github.com/zerotrace/zerotrace/collector/procmaps"
)

// TestPyModules: CPython's _queue and _asyncio extension modules among a
// process's mapped files; a deleted module, a name that only starts alike
// (_queue_helpers.py, a .so.1) and other modules are not taken.
func TestPyModules(t *testing.T) {
	for _, tc := range []struct {
		files []procmaps.File
		want  pyMods
	}{
		{[]procmaps.File{{Path: "/usr/bin/python3.11"},
			{Path: "/usr/lib/python3.11/lib-dynload/_queue.cpython-311-x86_64-linux-gnu.so"},
			{Path: "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"},
			{Path: "/usr/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so"}},
			pyMods{queue: "/usr/lib/python3.11/lib-dynload/_queue.cpython-311-x86_64-linux-gnu.so",
				asyncio: "/usr/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so"}},
		{[]procmaps.File{{Path: "/opt/py/_queue.cpython-311-x86_64-linux-gnu.so", Deleted: true},
			{Path: "/opt/py/_asyncio.so.1"}, {Path: "/opt/py/_queue_helpers.py"}}, pyMods{}},
		{nil, pyMods{}},
	} {
		if got := pyModules(tc.files); got != tc.want {
			t.Errorf("pyModules(%+v) = %+v, want %+v", tc.files, got, tc.want)
		}
	}
}
