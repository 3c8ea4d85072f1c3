package kube

import (
	"net/netip"
	"sync"
	"time"
)

// Meta is the workload metadata of a span.
type Meta struct {
	Namespace    string
	Pod          string
	PodUID       string
	Node         string
	Workload     string // name of the workload (Deployment, …), the pod's name if it has no controller
	WorkloadKind string // Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet, Pod
	Container    string // container name in the pod spec; "" when looked up by pod
	Proxy        bool   // the container (or process) is the pod's sidecar proxy
	Apps         int    // application (non-proxy) containers in the pod
}

// Service is the service name of a span with this metadata: the workload, or
// the container name when the pod runs several application containers.
func (m Meta) Service() string {
	if m.Apps > 1 && m.Container != "" && !m.Proxy {
		return m.Container
	}
	if m.Workload != "" {
		return m.Workload
	}
	return m.Pod
}

// podEntry is one pod as a source reported it.
type podEntry struct {
	meta       Meta            // pod-level (Container "", Proxy false)
	containers map[string]Meta // by container id
	ips        []netip.Addr
	source     string    // "api", "kubelet", "static"
	deleted    time.Time // zero while the pod exists
}

// Index is what the collector knows of the pods of its node. It is safe for
// concurrent use; lookups never block on I/O.
type Index struct {
	// Grace keeps a deleted pod's metadata for late spans (default 30 s).
	Grace time.Duration
	now   func() time.Time

	mu     sync.RWMutex
	pods   map[string]*podEntry // by pod UID (static entries: "static/<n>")
	byCID  map[string]string    // container id → pod UID
	byIP   map[netip.Addr]string
	byNS   map[uint64]string // netns inode → pod UID (static mapping)
	byNIC  map[string]string // capture interface → pod UID (static mapping)
	synced map[string]bool   // sources that have listed once
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{Grace: 30 * time.Second, now: time.Now, pods: map[string]*podEntry{}, byCID: map[string]string{},
		byIP: map[netip.Addr]string{}, byNS: map[uint64]string{}, byNIC: map[string]string{}, synced: map[string]bool{}}
}

func (x *Index) live(uid string) (*podEntry, bool) {
	e, ok := x.pods[uid]
	if !ok {
		return nil, false
	}
	if !e.deleted.IsZero() && x.now().Sub(e.deleted) > x.Grace {
		return nil, false
	}
	return e, true
}

// Container looks up a container id (from the process's cgroup).
func (x *Index) Container(id string) (Meta, bool) {
	if id == "" {
		return Meta{}, false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.live(x.byCID[id])
	if !ok {
		return Meta{}, false
	}
	m, ok := e.containers[id]
	return m, ok
}

// Pod looks up a pod UID (from the cgroup path, when the container id is not
// in the pod's status yet). The container is named when the pod has one.
func (x *Index) Pod(uid string) (Meta, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.podMeta(uid)
}

func (x *Index) podMeta(uid string) (Meta, bool) {
	if uid == "" {
		return Meta{}, false
	}
	e, ok := x.live(uid)
	if !ok {
		return Meta{}, false
	}
	return e.meta, true
}

// IP looks up a pod IP (packet spans in Kubernetes).
func (x *Index) IP(a netip.Addr) (Meta, bool) { return lookup(x, x.byIP, a.Unmap()) }

// NetNS looks up a network namespace inode (static mapping).
func (x *Index) NetNS(ino uint64) (Meta, bool) { return lookup(x, x.byNS, ino) }

// Interface looks up a capture interface (static mapping: the node side of a
// pod's veth).
func (x *Index) Interface(name string) (Meta, bool) { return lookup(x, x.byNIC, name) }

// lookup reads the pod of a key of one of the index's maps.
func lookup[K comparable](x *Index, m map[K]string, k K) (Meta, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	uid, ok := m[k]
	if !ok {
		return Meta{}, false
	}
	return x.podMeta(uid)
}

// Synced reports whether a source ("api", "kubelet") has listed its pods.
func (x *Index) Synced(source string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.synced[source]
}

func (x *Index) markSynced(source string) {
	x.mu.Lock()
	x.synced[source] = true
	x.mu.Unlock()
}

// Len is the number of live pods.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := 0
	for uid := range x.pods {
		if e, ok := x.live(uid); ok && e.deleted.IsZero() {
			n++
		}
	}
	return n
}

// put adds or replaces a pod. The API server's view replaces the kubelet's.
func (x *Index) put(uid string, e *podEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.expire()
	if old, ok := x.pods[uid]; ok {
		if old.source == "api" && e.source == "kubelet" && old.deleted.IsZero() {
			return
		}
		x.unlink(uid, old)
	}
	x.pods[uid] = e
	for id := range e.containers {
		x.byCID[id] = uid
	}
	for _, ip := range e.ips {
		x.byIP[ip] = uid
	}
}

// remove marks a pod deleted; it stays readable for Grace.
func (x *Index) remove(uid string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.pods[uid]; ok && e.deleted.IsZero() {
		e.deleted = x.now()
	}
	x.expire()
}

// expire drops pods deleted longer than Grace ago (write lock held).
func (x *Index) expire() {
	for uid, e := range x.pods {
		if !e.deleted.IsZero() && x.now().Sub(e.deleted) > x.Grace {
			x.unlink(uid, e)
			delete(x.pods, uid)
		}
	}
}

func (x *Index) unlink(uid string, e *podEntry) {
	for id := range e.containers {
		if x.byCID[id] == uid {
			delete(x.byCID, id)
		}
	}
	for _, ip := range e.ips {
		if x.byIP[ip] == uid {
			delete(x.byIP, ip)
		}
	}
}

// uids lists the live pods of a source.
func (x *Index) uids(source string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	for uid, e := range x.pods {
		if e.source == source && e.deleted.IsZero() {
			out = append(out, uid)
		}
	}
	return out
}
