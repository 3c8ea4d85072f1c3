// Package doctor answers "will the collector run here, and what will it
// miss?" before it is started (`zerotrace doctor`): one Check per thing the
// collector needs — the kernel and its BTF, each attach type, BPF map and
// helper it uses, capabilities and memlock, AF_PACKET and fanout, the cgroup
// layout and container runtimes, the data directory, the object store and
// the Kubernetes API — each ok, degraded, missing, unused or unknown, with
// what it costs the user when it is not ok.
//
// Where a feature probe could say yes while the collector would still fail,
// the real thing is done: the capture's own programs are loaded and
// attached for a moment (ebpf.Probe), rings are opened on the configured
// interfaces (packet.Probe), an object is written to the bucket and
// deleted, and the API server is asked what the collector's credentials
// may do (SelfSubjectAccessReview). Everything is closed or deleted again.
package doctor
