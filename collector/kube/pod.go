package kube

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DefaultProxyContainers are the sidecar proxies of the common meshes.
var DefaultProxyContainers = []string{"istio-proxy", "linkerd-proxy", "envoy-sidecar", "kuma-sidecar", "consul-dataplane"}

// ContainerID strips the runtime scheme of a container status's id
// ("containerd://<id>", "cri-o://<id>", "docker://<id>").
func ContainerID(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		return s[i+3:]
	}
	return s
}

// entryOf turns a pod and its resolved workload into an index entry.
func entryOf(p *corev1.Pod, workload, kind string, proxies []string, source string) *podEntry {
	m := Meta{Namespace: p.Namespace, Pod: p.Name, PodUID: string(p.UID), Node: p.Spec.NodeName, Workload: workload, WorkloadKind: kind}
	isProxy := func(name string) bool { return slices.Contains(proxies, name) }
	var apps []string
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways && !isProxy(c.Name) {
			apps = append(apps, c.Name) // a native sidecar that is no proxy
		}
	}
	for _, c := range p.Spec.Containers {
		if !isProxy(c.Name) {
			apps = append(apps, c.Name)
		}
	}
	m.Apps = len(apps)
	if len(apps) == 1 {
		m.Container = apps[0] // the pod's one application container
	}
	e := &podEntry{meta: m, containers: map[string]Meta{}, source: source}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if id := ContainerID(cs.ContainerID); id != "" {
				cm := m
				cm.Container, cm.Proxy = cs.Name, isProxy(cs.Name)
				e.containers[id] = cm
			}
		}
	}
	if !p.Spec.HostNetwork { // a host-network pod's IP is the node's
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				e.ips = append(e.ips, a.Unmap())
			}
		}
		if len(p.Status.PodIPs) == 0 {
			if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
				e.ips = append(e.ips, a.Unmap())
			}
		}
	}
	return e
}

// StaticPod is one entry of the collector's netns → pod mapping (outside
// Kubernetes).
type StaticPod struct {
	NetNS      uint64   // inode of the pod's network namespace
	Interfaces []string // capture interfaces that are the pod's (node side of its veth)
	Meta       Meta
}

// AddStatic adds a mapping entry (it never expires).
func (x *Index) AddStatic(p StaticPod) {
	x.mu.Lock()
	uid := "static/" + strconv.Itoa(len(x.pods))
	x.mu.Unlock()
	if p.Meta.Apps == 0 {
		p.Meta.Apps = 1
	}
	p.Meta.PodUID = ""
	x.put(uid, &podEntry{meta: p.Meta, source: "static"})
	x.mu.Lock()
	defer x.mu.Unlock()
	if p.NetNS != 0 {
		x.byNS[p.NetNS] = uid
	}
	for _, n := range p.Interfaces {
		x.byNIC[n] = uid
	}
}
