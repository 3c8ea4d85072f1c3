//go:build linux

package agent

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestWorkloadsStatic: the demo's mapping. A process in a mapped netns takes
// the pod's workload as its service, nginx is the pod's proxy, a packet span
// on the pod's veth gets the pod, an unmapped process keeps its name.
func TestWorkloadsStatic(t *testing.T) {
	cfg := Defaults()
	cfg.Namespace = "bookinfo"
	cfg.Pods = []PodConfig{{Netns: "4026532999", Interfaces: []string{"v-productpage"}, Pod: "productpage"}}
	cfg.ProxyProcesses = []string{"^nginx"}
	cfg.Kubernetes.Enabled = "false"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	wl, err := startWorkloads(context.Background(), &cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	app := span.Span{SignalSource: span.SourceEBPF, NetNS: 4026532999, PID: 10, ProcessName: "python3.11", Service: "python3.11"}
	proxy := span.Span{SignalSource: span.SourceEBPF, NetNS: 4026532999, PID: 11, ProcessName: "nginx", Service: "nginx"}
	other := span.Span{SignalSource: span.SourceEBPF, NetNS: 1, PID: 12, ProcessName: "ruby3.1", Service: "ruby3.1"}
	pkt := span.Span{SignalSource: span.SourcePacket, CaptureNIC: "v-productpage", TapSide: span.TapClientNIC}
	for _, s := range []*span.Span{&app, &proxy, &other, &pkt} {
		wl.enrich(s)
	}
	if app.Service != "productpage" || app.Pod != "productpage" || app.Workload != "productpage" || app.WorkloadKind != "Deployment" ||
		app.Namespace != "bookinfo" || app.Flags.Has(span.FlagProxy) {
		t.Errorf("app: %+v", app)
	}
	if proxy.Service != "productpage" || !proxy.Flags.Has(span.FlagProxy) || proxy.ProcessName != "nginx" {
		t.Errorf("proxy: %+v", proxy)
	}
	if other.Service != "ruby3.1" || other.Pod != "" {
		t.Errorf("unmapped: %+v", other)
	}
	if pkt.Pod != "productpage" || pkt.Workload != "productpage" || pkt.Service != "" {
		t.Errorf("packet: %+v", pkt)
	}
}

// TestWorkloadsKubernetes: the collector's configuration pointed at an API
// server on loopback that lists the node's pods (collector/kube/testdata,
// the API server's JSON) and has no ReplicaSets to show: workloads come
// from the pods; an unknown container is warned about once.
func TestWorkloadsKubernetes(t *testing.T) {
	pods, err := os.ReadFile(filepath.Join("..", "kube", "testdata", "pods-node1.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/api/v1/pods" && q.Get("fieldSelector") == "spec.nodeName=node1" && q.Get("watch") == "":
			w.Header().Set("Content-Type", "application/json")
			w.Write(pods)
		case r.URL.Path == "/api/v1/pods" && q.Get("watch") == "true" && q.Get("sendInitialEvents") == "":
			w.Header().Set("Content-Type", "application/json")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default: // no watch-list, no ReplicaSets
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"NotFound","code":404}`))
		}
	}))
	defer srv.Close()
	cfg := Defaults()
	cfg.Node = "node1"
	cfg.Kubernetes.APIServer = srv.URL
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs testenv.Log
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wl, err := startWorkloads(ctx, &cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); !wl.idx.Synced("api"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pods not listed:\n%s", logs.String())
		}
	}
	app := span.Span{SignalSource: span.SourceEBPF, ContainerID: strings.Repeat("a", 64), ProcessName: "python3", Service: "python3"}
	proxy := span.Span{SignalSource: span.SourceEBPF, ContainerID: strings.Repeat("b", 64), ProcessName: "envoy", Service: "envoy"}
	pkt := span.Span{SignalSource: span.SourcePacket, CaptureNIC: "cali1234", TapSide: span.TapServerNIC, ServerIP: netip.MustParseAddr("10.244.1.12")}
	wl.enrich(&app)
	wl.enrich(&proxy)
	wl.enrich(&pkt)
	if app.Service != "productpage-v1" || app.ContainerName != "productpage" || app.Pod != "productpage-v1-5f9dbcd669-x7k2p" ||
		app.Namespace != "bookinfo" || app.WorkloadKind != "Deployment" || app.Flags.Has(span.FlagProxy) {
		t.Errorf("app: %+v", app)
	}
	if proxy.Service != "productpage-v1" || proxy.ContainerName != "istio-proxy" || !proxy.Flags.Has(span.FlagProxy) {
		t.Errorf("proxy: %+v", proxy)
	}
	if pkt.Pod != "ratings-v1-0" || pkt.Workload != "ratings-v1" || pkt.WorkloadKind != "StatefulSet" {
		t.Errorf("packet by pod IP: %+v", pkt)
	}
	for i := 0; i < 3; i++ {
		s := span.Span{SignalSource: span.SourceEBPF, ContainerID: strings.Repeat("9", 64), ProcessName: "java", Service: "java"}
		wl.enrich(&s)
		if s.Service != "java" || s.Pod != "" {
			t.Errorf("unknown container: %+v", s)
		}
	}
	if n := strings.Count(logs.String(), "a container is not among the node's pods"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logs.String())
	}
}
