package kube

import (
	"context"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
)

// owners resolves a pod's workload through owner references: ReplicaSet →
// Deployment, Job → CronJob; StatefulSet and DaemonSet are direct. Answers
// are cached per owner (a ReplicaSet's Deployment does not change).
type owners struct {
	apps  appsv1client.ReplicaSetsGetter // nil: no API server (kubelet source)
	batch batchv1client.JobsGetter
	warn  func(cause string, err error)

	mu    sync.Mutex
	cache map[string][2]string // namespace/kind/name → workload, kind
}

func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

// resolve returns the workload name and kind of a pod. It may call the API
// server (with a timeout); it runs in the informer's handler, never on the
// capture path.
func (o *owners) resolve(p *corev1.Pod) (string, string) {
	ref := controllerOf(p.OwnerReferences)
	if ref == nil {
		return p.Name, "Pod"
	}
	key := p.Namespace + "/" + ref.Kind + "/" + ref.Name
	o.mu.Lock()
	if v, ok := o.cache[key]; ok {
		o.mu.Unlock()
		return v[0], v[1]
	}
	o.mu.Unlock()
	name, kind, cache := o.lookup(p, ref)
	if cache {
		o.mu.Lock()
		if o.cache == nil || len(o.cache) > 10000 {
			o.cache = map[string][2]string{}
		}
		o.cache[key] = [2]string{name, kind}
		o.mu.Unlock()
	}
	return name, kind
}

func (o *owners) lookup(p *corev1.Pod, ref *metav1.OwnerReference) (name, kind string, cache bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch ref.Kind {
	case "ReplicaSet":
		if o.apps != nil {
			rs, err := o.apps.ReplicaSets(p.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err == nil {
				if d := controllerOf(rs.OwnerReferences); d != nil {
					return d.Name, d.Kind, true
				}
				return rs.Name, "ReplicaSet", true
			}
			o.warn("replicaset lookup", err)
		}
		// The Deployment controller names a ReplicaSet <deployment>-<pod-template-hash>.
		if h := p.Labels["pod-template-hash"]; h != "" {
			if d, ok := strings.CutSuffix(ref.Name, "-"+h); ok {
				return d, "Deployment", false
			}
		}
		return ref.Name, "ReplicaSet", false
	case "Job":
		if o.batch != nil {
			j, err := o.batch.Jobs(p.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err == nil {
				if c := controllerOf(j.OwnerReferences); c != nil {
					return c.Name, c.Kind, true
				}
				return j.Name, "Job", true
			}
			o.warn("job lookup", err)
		}
		return ref.Name, "Job", false
	}
	return ref.Name, ref.Kind, true
}
