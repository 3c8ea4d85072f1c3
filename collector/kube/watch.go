package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Warner logs a warning once per cause (an unreachable API server retried
// every second logs once, not every second).
type Warner struct {
	Log  *slog.Logger
	mu   sync.Mutex
	seen map[string]bool
}

// Warn logs err under cause the first time cause is seen.
func (w *Warner) Warn(cause string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[cause] {
		return
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[cause] = true
	if w.Log != nil {
		w.Log.Warn("workload metadata: "+cause+" (logged once; spans keep their process names where unresolved)", "err", err)
	}
}

// Options configure Watch.
type Options struct {
	Node            string       // the collector's node: only its pods are watched
	Config          *rest.Config // the API server
	ProxyContainers []string     // container names that are sidecar proxies
	Warner          *Warner
	Logger          *slog.Logger
}

// Watch fills x from the API server: a pod informer limited to the node
// (field selector spec.nodeName), owner lookups for ReplicaSets and Jobs. It
// returns at once; the informer runs until ctx is done and retries an
// unreachable server with backoff, warning once.
func Watch(ctx context.Context, x *Index, opt Options) error {
	if opt.Node == "" {
		return errors.New("watching pods: no node name")
	}
	if opt.Warner == nil {
		opt.Warner = &Warner{Log: opt.Logger}
	}
	cfg := rest.CopyConfig(opt.Config)
	cfg.UserAgent = "zerotrace-collector"
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	apps, err := appsv1client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	batch, err := batchv1client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	own := &owners{apps: apps, batch: batch, warn: opt.Warner.Warn}
	sel := fields.OneTermEqualSelector("spec.nodeName", opt.Node).String()
	tweak := func(o *metav1.ListOptions) { o.FieldSelector = sel }
	// Errors are reported from the list and watch calls themselves: in
	// watch-list mode the reflector retries a refused connection without
	// calling its error handler.
	list := func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		tweak(&o)
		obj, err := core.Pods("").List(ctx, o)
		if err != nil {
			opt.Warner.Warn("api server", err)
		}
		return obj, err
	}
	watchFn := func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		tweak(&o)
		w, err := core.Pods("").Watch(ctx, o)
		if err != nil && !apierrors.IsInvalid(err) { // Invalid: a server without watch-list; the reflector lists instead
			opt.Warner.Warn("api server", err)
		}
		return w, err
	}
	lw := &cache.ListWatch{
		ListFunc:             func(o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) },
		WatchFunc:            func(o metav1.ListOptions) (watch.Interface, error) { return watchFn(ctx, o) },
		ListWithContextFunc:  list,
		WatchFuncWithContext: watchFn,
	}
	inf := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, core), &corev1.Pod{},
		cache.SharedIndexInformerOptions{})
	inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		opt.Warner.Warn("api server", err)
	})
	set := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		if p.Spec.NodeName != opt.Node {
			x.remove(string(p.UID))
			return
		}
		name, kind := own.resolve(p)
		x.put(string(p.UID), entryOf(p, name, kind, opt.ProxyContainers, "api"))
	}
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				x.remove(string(p.UID))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	go inf.RunWithContext(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			x.markSynced("api")
			if opt.Logger != nil {
				opt.Logger.Info("workload metadata: pods of the node listed", "node", opt.Node, "pods", x.Len())
			}
		}
	}()
	return nil
}
