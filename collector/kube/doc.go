// Package kube names a span's workload: namespace, pod, workload (Deployment,
// StatefulSet, DaemonSet, CronJob, Job through owner references), container
// and whether the process is the pod's sidecar proxy.
//
// An Index holds what is known, keyed by container id (from the process's
// cgroup, package cgroup), pod UID, pod IP, network namespace inode and
// capture interface. Lookups are read-locked map reads: the capture never
// waits on the network. Three sources fill it: Watch (client-go informers on
// the API server, limited to the collector's node by spec.nodeName), Kubelet
// (the kubelet's /pods, polled while the API server is unreachable) and the
// collector's static netns → pod mapping (outside Kubernetes, the demo).
//
// A deleted pod stays in the index for a grace period, so spans of its last
// requests, which arrive after the deletion, still carry its names; after
// that its spans keep their process name.
package kube
