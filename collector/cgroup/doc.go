// Package cgroup finds the container of a process from its /proc/<pid>/cgroup
// file: the container id, the runtime that named the cgroup (containerd,
// CRI-O, Docker, Podman) and, under the kubelet's hierarchy, the pod UID.
//
// It reads cgroup v2 ("0::/path") and v1 ("N:controllers:/path") lines, with
// the kubelet's systemd ("kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope")
// and cgroupfs ("/kubepods/burstable/pod<uid>/<id>") drivers, plain Docker
// ("/docker/<id>", "docker-<id>.scope") and nested kubelets (kind:
// "/kubelet.slice/kubelet-kubepods.slice/…").
//
// ByID finds a cgroup's path from the cgroup v2 id BPF programs see, for a
// process that is gone before its /proc file could be read.
package cgroup
