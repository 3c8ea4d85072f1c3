//go:build linux

package ebpf

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestCaptureJavaTimedWait: a Java server hands each request's downstream
// call to a worker of a shared ExecutorService and waits for it with
// Future.get(10 s): a timed park. The worker's wake of the waiting handler
// (its own FUTEX_WAKE on the handler's parker) is the handoff's verdict
// (docs/assembly.md "Handoff"), timed or not. The same check as the pool
// test: every context a call carries is its request's.
func TestCaptureJavaTimedWait(t *testing.T) {
	testJavaPool(t, "executor", 24)
}

// TestCaptureJavaCompletable: the same with a CompletableFuture chain
// (supplyAsync on a pool of its own, thenApply) waited for with get(10 s).
func TestCaptureJavaCompletable(t *testing.T) {
	testJavaPool(t, "completable", 24)
}

// TestCapturePoolTimedWait: a Python server hands its calls to a hand-made
// pool (threads taking work from a queue.Queue, which the collector does not
// follow) and waits for each result with Future.result(timeout=10): only
// wakes (handoffs, their verdicts and claims) can tie a call to its request,
// and the verdicts are timed waits' wakes. Python's GIL, whose waits are
// timed too, must not pass for a result handed back (it is the process's
// global, and its waits time out within the switch interval).
func TestCapturePoolTimedWait(t *testing.T) {
	checkContexts(t, "python timed pool", 2, 16, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{sysPython, "-u", filepath.Join(runtimeDir(t), "pool.py"),
			tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf), "timed"})
	})
}

func testJavaPool(t *testing.T, mode string, minLinked int) {
	testenv.RequireBinaries(t, "java", "javac")
	dir := javaClasses(t)
	checkContexts(t, "java "+mode, 1, minLinked, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{"java", "-cp", dir, "Server",
			tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf), mode})
	})
}
