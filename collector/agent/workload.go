//go:build linux

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/zerotrace/zerotrace/collector/kube"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// workloads names spans by pod and workload: the Kubernetes sources and the
// static netns → pod mapping fill an index that enrich reads without
// blocking.
type workloads struct {
	cfg    *Config
	idx    *kube.Index
	warner *kube.Warner
	kube   bool // the API server (and kubelet) sources run
}

func startWorkloads(ctx context.Context, cfg *Config, log *slog.Logger) (*workloads, error) {
	w := &workloads{cfg: cfg, idx: kube.NewIndex(), warner: &kube.Warner{Log: log}}
	if cfg.Kubernetes.DeletedGrace > 0 {
		w.idx.Grace = cfg.Kubernetes.DeletedGrace
	}
	for i, p := range cfg.Pods {
		sp := kube.StaticPod{Interfaces: p.Interfaces, Meta: kube.Meta{Namespace: p.Namespace, Pod: p.Pod, Node: cfg.Node,
			Workload: p.Workload, WorkloadKind: p.WorkloadKind}}
		if sp.Meta.Namespace == "" {
			sp.Meta.Namespace = cfg.Namespace
		}
		if sp.Meta.Workload == "" {
			sp.Meta.Workload = p.Pod
		}
		if sp.Meta.WorkloadKind == "" {
			sp.Meta.WorkloadKind = "Deployment"
		}
		if p.Netns != "" {
			ino, err := netnsInodes([]string{p.Netns})
			if err != nil {
				return nil, fmt.Errorf("pods[%d]: %w", i, err)
			}
			sp.NetNS = uint64(ino[0])
		}
		w.idx.AddStatic(sp)
	}
	if !cfg.KubernetesEnabled(os.Getenv) {
		return w, nil
	}
	w.kube = true
	kc := cfg.Kubernetes
	proxies := kc.ProxyContainers
	if len(proxies) == 0 {
		proxies = kube.DefaultProxyContainers
	}
	rc, err := cfg.KubernetesREST()
	if err != nil {
		return nil, err
	}
	if err := kube.Watch(ctx, w.idx, kube.Options{Node: cfg.Node, Config: rc, ProxyContainers: proxies, Warner: w.warner, Logger: log}); err != nil {
		return nil, err
	}
	if kc.KubeletURL != "" {
		go kube.PollKubelet(ctx, w.idx, kube.KubeletOptions{URL: os.ExpandEnv(kc.KubeletURL), TokenFile: kc.KubeletTokenFile,
			InsecureTLS: kc.KubeletInsecureTLS, ProxyContainers: proxies, Warner: w.warner})
	}
	log.Info("workload metadata from Kubernetes", "node", cfg.Node, "kubelet_fallback", kc.KubeletURL != "")
	return w, nil
}

// enrich sets a span's pod, workload and container, and for process spans
// the service (the workload) and the proxy flag. A span of an unknown pod
// keeps its process name.
func (w *workloads) enrich(s *span.Span) {
	var m kube.Meta
	ok := false
	process := s.SignalSource != span.SourcePacket
	if process {
		if s.ContainerID != "" {
			if m, ok = w.idx.Container(s.ContainerID); !ok && w.kube && (w.idx.Synced("api") || w.idx.Synced("kubelet")) {
				w.warner.Warn("a container is not among the node's pods", fmt.Errorf("container %.12s of pid %d (%s)", s.ContainerID, s.PID, s.ProcessName))
			}
		}
		if !ok && s.NetNS != 0 {
			m, ok = w.idx.NetNS(s.NetNS)
		}
	} else {
		m, ok = w.idx.Interface(s.CaptureNIC)
		if !ok && w.kube {
			switch s.TapSide {
			case span.TapClientNIC:
				m, ok = w.idx.IP(s.ClientIP)
			case span.TapServerNIC:
				m, ok = w.idx.IP(s.ServerIP)
			}
		}
	}
	if !ok {
		return
	}
	if m.Namespace != "" {
		s.Namespace = m.Namespace
	}
	s.Pod, s.Workload, s.WorkloadKind = m.Pod, m.Workload, m.WorkloadKind
	if !process {
		return
	}
	if w.cfg.IsProxyProcess(s.ProcessName) {
		m.Proxy = true
	}
	s.ContainerName = m.Container
	if m.Proxy {
		s.Flags |= span.FlagProxy
	}
	s.Service = m.Service()
}
