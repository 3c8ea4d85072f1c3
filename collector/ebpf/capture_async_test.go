//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// asyncioPythons are the CPython builds the asyncio tests run: Debian's
// /usr/bin/python3 and the python3 on the PATH when that is another one
// (pyenv's here); collector/cpython's table tests cover 3.10 to 3.13.
func asyncioPythons(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		v, err := exec.Command(p, "-c", "import sys, _asyncio; print(sys.version.split()[0], sys.executable)").Output()
		if err != nil {
			testenv.Skip(t, "%s with _asyncio: %v", p, err)
			continue
		}
		f := strings.Fields(string(v))
		out[f[0]] = f[1]
	}
	return out
}

// TestCaptureAsyncio: an asyncio streams server serves 32 concurrent
// requests on one event loop; each request's two calls run in tasks of
// their own (asyncio.gather), one on a new connection, one on a keep-alive
// connection shared by every request. The collector follows the tasks
// through the _asyncio module's uprobes (bpf/socket/asyncio.h): each call
// must carry its request's context (the connection's handler task answers
// the request; the gathered tasks were created by it while the request was
// open); the background task's and the callback-created tasks' calls must
// carry none.
func TestCaptureAsyncio(t *testing.T) {
	for version, py := range asyncioPythons(t) {
		t.Run(version, func(t *testing.T) {
			checkContexts(t, "asyncio "+version, 2, 64, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
				return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{py, "-u", filepath.Join(runtimeDir(t), "aserver.py"),
					tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf)})
			})
		})
	}
}

// TestCaptureAsyncioPure: the same server with asyncio's Python tasks (the
// _asyncio module kept out): the collector says once that it does not
// follow the process's tasks, and no call carries another request's
// context.
func TestCaptureAsyncioPure(t *testing.T) {
	tp, live, log := liveTopoLog(t)
	checkContextsIn(t, tp, live, "pure asyncio", 2, 0, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{"/usr/bin/python3", "-u", filepath.Join(runtimeDir(t), "aserver.py"),
			tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf), "pure"})
	})
	if n := strings.Count(log.String(), "pure-Python asyncio"); n != 1 {
		t.Errorf("the fallback is logged %d times, want once:\n%s", n, log.String())
	}
}

// TestCaptureNodeLoop: a Node.js http server serves 32 concurrent requests
// on one event loop; each request's handler starts two calls, one on a new
// connection, one through a keep-alive http.Agent of 4 sockets (requests
// queue for a socket a finished call frees), and a timer calls for no
// request. The collector follows the loop's turns (bpf/socket/nodeasync.h):
// a call written in the turn that ran its request's handler, or first on a
// connection that turn opened, carries the request's context; calls of
// queued requests (written in another request's response callback) and the
// timer's carry none.
func TestCaptureNodeLoop(t *testing.T) {
	testenv.RequireBinaries(t, "node")
	checkContexts(t, "node loop", 2, 32, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{"node", filepath.Join(runtimeDir(t), "loop.js"),
			tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf)})
	})
}

// startSpinning starts argv (a server whose loop never idles from its
// start until the file spun exists, serving front) and returns when
// followed(pid) says the collector follows its loop, spun written: the
// uprobes were attached while the loop ran. (A spin of a fixed 3 s failed
// the test whenever the start and the attach took longer than 2.5 s, as on
// a loaded machine.)
func startSpinning(t *testing.T, tp *topo, front int, spun string, argv []string, followed func(pid uint32) bool) *exec.Cmd {
	t.Helper()
	started := time.Now()
	srv := startServer(t, tp.ServerNS, tp.ServerIP, front, argv)
	pid := uint32(srv.Process.Pid)
	waitFor(t, func() bool { return followed(pid) }, func() string { return fmt.Sprintf("the loop of %v not followed", argv) })
	t.Logf("followed %v after the start", time.Since(started).Round(time.Millisecond))
	if err := os.WriteFile(spun, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestCaptureNodeLoopAttachedMidTurn: the same server, its loop busy (an
// immediate queuing the next) from its start until it is followed, while the
// collector attaches the turn uprobes after the process's first event: a
// turn that began once the scope constructors' uprobes were attached but
// whose Close() ran before Close()'s were left a scope open for good, and
// with it every later turn unknown (no call linked; the demo's nodeloop
// variant lost the concurrent calls in about one run in three). With the
// Close() probes attached first, every scope followed is seen to close: the
// calls carry their requests' contexts as in TestCaptureNodeLoop.
func TestCaptureNodeLoopAttachedMidTurn(t *testing.T) {
	testenv.RequireBinaries(t, "node")
	tp, live := liveTopo(t)
	checkContextsIn(t, tp, live, "node loop attached mid-turn", 2, 32, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		spun := filepath.Join(t.TempDir(), "spun")
		return startSpinning(t, tp, front, spun, []string{"node", filepath.Join(runtimeDir(t), "loop.js"),
			tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf), spun}, live.c.TurnsFollowed)
	})
}

// TestCaptureAsyncioAttachedMidStep: TestCaptureAsyncio's server with a
// task stepping without pause from its start until it is followed, while the
// collector attaches the task uprobes after the process's first event: a
// step entered once the step's entry uprobe was attached but returned
// before its return's was left the loop inside a step for good (no later
// task known). With the returns attached first, every step followed is
// seen to return.
func TestCaptureAsyncioAttachedMidStep(t *testing.T) {
	for version, py := range asyncioPythons(t) {
		t.Run(version, func(t *testing.T) {
			tp, live := liveTopo(t)
			checkContextsIn(t, tp, live, "asyncio "+version+" attached mid-step", 2, 64, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
				spun := filepath.Join(t.TempDir(), "spun")
				return startSpinning(t, tp, front, spun, []string{py, "-u", filepath.Join(runtimeDir(t), "aserver.py"),
					tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf), "spin=" + spun}, live.c.TasksFollowed)
			})
		})
	}
}
