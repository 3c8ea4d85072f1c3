//go:build linux

package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainers reads a /proc of cgroup files as the kernel writes them:
// containers counted by runtime, pods, host processes, and cgroups of a
// runtime whose layout names no container.
func TestContainers(t *testing.T) {
	idA, idB, idC := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	pod := "kubepods-burstable-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice"
	procs := map[string]string{
		"1":    "0::/init.scope\n",
		"410":  "0::/system.slice/containerd.service\n",
		"1001": "0::/kubepods.slice/kubepods-burstable.slice/" + pod + "/cri-containerd-" + idA + ".scope\n",
		"1002": "0::/kubepods.slice/kubepods-burstable.slice/" + pod + "/cri-containerd-" + idB + ".scope\n",
		"2001": "12:memory:/docker/" + idC + "\n1:name=systemd:/docker/" + idC + "\n0::/system.slice/containerd.service\n",
		"3001": "0::/kubepods/besteffort/pod3b1e45c8-0c8a-4d0f-9a47-4f1f5bb2e1c1/" + idC + "\n",
		"4001": "0::/kubepods.slice/kubepods-burstable.slice/" + pod + "/weird-runtime-xyz.scope\n",
		"self": "0::/init.scope\n", // not a pid
	}
	root := t.TempDir()
	for pid, cg := range procs {
		os.Mkdir(filepath.Join(root, pid), 0o755)
		if err := os.WriteFile(filepath.Join(root, pid, "cgroup"), []byte(cg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(root, "5001"), 0o755) // exited: no cgroup file
	c := containers(root)
	want := "4 of 7 processes in containers (cgroupfs driver 1, containerd 2, docker 1; 3 in Kubernetes pods); pids 4001… in cgroups of a runtime or the kubelet whose layout names no container"
	if c.Status != Degraded || c.Detail != want || !strings.Contains(c.Cost, "no pod or workload name") {
		t.Errorf("%s %q — %q\nwant degraded %q", c.Status, c.Detail, c.Cost, want)
	}
	os.RemoveAll(filepath.Join(root, "4001"))
	if c := containers(root); c.Status != OK || !strings.HasPrefix(c.Detail, "4 of 6 processes in containers") {
		t.Errorf("%s %q", c.Status, c.Detail)
	}
	for _, pid := range []string{"1001", "1002", "2001", "3001"} {
		os.RemoveAll(filepath.Join(root, pid))
	}
	if c := containers(root); c.Status != OK || c.Detail != "0 of 2 processes in containers: spans are named by process (and by the pods: mapping outside Kubernetes)" {
		t.Errorf("%s %q", c.Status, c.Detail)
	}
	// This machine: whatever it runs, the host's PID namespace and a
	// cgroup hierarchy are found.
	for _, c := range []Check{pidNamespace("/proc"), cgroupLayout("/sys/fs/cgroup")} {
		if c.Status != OK {
			t.Errorf("%s: %s %s", c.Name, c.Status, c.Detail)
		}
		t.Logf("%s: %s", c.Name, c.Detail)
	}
}
