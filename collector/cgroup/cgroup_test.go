package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Container ids and pod UIDs as runtimes and the kubelet write them.
const (
	idA  = "9d1a4e8f3c2b7a6d5e4f30112233445566778899aabbccddeeff001122334455"
	idB  = "4f3b2a1908e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c"
	idC  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	uid1 = "3b1e45c8-0c8a-4d0f-9a47-4f1f5bb2e1c1"
)

// One /proc/<pid>/cgroup file per layout, as the kernel prints it.
var cases = []struct {
	name string
	file string
	want Container
	err  error
}{
	{"containerd, cgroup v2, systemd driver",
		"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/cri-containerd-" + idA + ".scope\n",
		Container{ID: idA, Runtime: "containerd", PodUID: uid1}, nil},
	{"containerd, cgroup v2, guaranteed QoS",
		"0::/kubepods.slice/kubepods-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/cri-containerd-" + idB + ".scope\n",
		Container{ID: idB, Runtime: "containerd", PodUID: uid1}, nil},
	{"containerd, cgroup v2, cgroupfs driver",
		"0::/kubepods/besteffort/pod3b1e45c8-0c8a-4d0f-9a47-4f1f5bb2e1c1/" + idC + "\n",
		Container{ID: idC, PodUID: uid1}, nil},
	{"CRI-O, cgroup v2, systemd driver",
		"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/crio-" + idA + ".scope\n",
		Container{ID: idA, Runtime: "cri-o", PodUID: uid1}, nil},
	{"CRI-O conmon, cgroup v2",
		"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/crio-conmon-" + idA + ".scope\n",
		Container{ID: idA, Runtime: "cri-o", PodUID: uid1}, nil},
	{"CRI-O, cgroup v1 hybrid (v2 line is the root)",
		"12:hugetlb:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/crio-" + idB + ".scope\n" +
			"11:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/crio-" + idB + ".scope\n" +
			"4:cpu,cpuacct:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/crio-" + idB + ".scope\n" +
			"1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/crio-" + idB + ".scope\n" +
			"0::/\n",
		Container{ID: idB, Runtime: "cri-o", PodUID: uid1}, nil},
	{"Docker, cgroup v1, cgroupfs driver",
		"12:perf_event:/docker/" + idC + "\n11:cpuset:/docker/" + idC + "\n10:memory:/docker/" + idC + "\n" +
			"2:cpu,cpuacct:/docker/" + idC + "\n1:name=systemd:/docker/" + idC + "\n0::/system.slice/containerd.service\n",
		Container{ID: idC, Runtime: "docker"}, nil},
	{"Docker, cgroup v2, systemd driver",
		"0::/system.slice/docker-" + idA + ".scope\n",
		Container{ID: idA, Runtime: "docker"}, nil},
	{"kubelet with dockershim, cgroup v1, cgroupfs driver",
		"11:memory:/kubepods/burstable/pod3b1e45c8-0c8a-4d0f-9a47-4f1f5bb2e1c1/" + idB + "\n" +
			"1:name=systemd:/kubepods/burstable/pod3b1e45c8-0c8a-4d0f-9a47-4f1f5bb2e1c1/" + idB + "\n",
		Container{ID: idB, PodUID: uid1}, nil},
	{"kind: a kubelet inside a node container",
		"0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/cri-containerd-" + idA + ".scope\n",
		Container{ID: idA, Runtime: "containerd", PodUID: uid1}, nil},
	{"kind seen from the host: the pod's id wins over the node's",
		"0::/system.slice/docker-" + idC + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/cri-containerd-" + idA + ".scope\n",
		Container{ID: idA, Runtime: "containerd", PodUID: uid1}, nil},
	{"Podman rootless",
		"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + idB + ".scope/container\n",
		Container{ID: idB, Runtime: "podman"}, nil},
	{"host service", "0::/system.slice/sshd.service\n", Container{}, nil},
	{"the container runtime itself", "0::/system.slice/containerd.service\n", Container{}, nil},
	{"init", "0::/init.scope\n", Container{}, nil},
	{"user session", "0::/user.slice/user-0.slice/session-3.scope\n", Container{}, nil},
	{"cgroup namespace root", "0::/\n", Container{}, nil},
	{"unknown runtime under the kubelet",
		"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b1e45c8_0c8a_4d0f_9a47_4f1f5bb2e1c1.slice/kata-sandbox-7.scope\n",
		Container{PodUID: uid1}, ErrUnknownLayout},
	{"docker with a short id", "0::/docker/abc123\n", Container{}, ErrUnknownLayout},
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	for i, c := range cases {
		pid := 1000 + i
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(c.file), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Read(root, uint32(pid))
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", c.name, got, err, c.want, c.err)
		}
	}
	if _, err := Read(root, 1); err == nil {
		t.Error("a missing pid: no error")
	}
}

func TestParseMalformed(t *testing.T) {
	for _, in := range []string{"garbage\n", "0:/kubepods\n", "0::relative/path\n", ":cpu:/x\n"} {
		if _, err := Parse([]byte(in)); err == nil || errors.Is(err, ErrUnknownLayout) {
			t.Errorf("%q: err %v, want a malformed-line error", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c.file))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if c.ID != "" && (err != nil || !isID(c.ID)) {
			t.Fatalf("id %q with err %v", c.ID, err)
		}
		if c.PodUID != "" && !isUID(c.PodUID) {
			t.Fatalf("pod uid %q", c.PodUID)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	in := []byte(cases[5].file) // v1 hybrid: the longest common file
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
