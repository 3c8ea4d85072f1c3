package kube

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"k8s.io/client-go/rest"
)

// Container ids of testdata/pods-node1.json.
var (
	idProductpage  = strings.Repeat("a", 64)
	idProxy        = strings.Repeat("b", 64)
	idRatings      = strings.Repeat("c", 64)
	idExporter     = strings.Repeat("d", 64)
	idBackup       = strings.Repeat("e", 64)
	idRestarted    = strings.Repeat("f", 64) // productpage after the MODIFIED event
	idDebugWeb     = strings.Repeat("1", 64)
	idDebugWorker  = strings.Repeat("2", 64)
	idDebugLinkerd = strings.Repeat("3", 64)
)

// apiServer serves the API server's list and watch of pods of node1 (from
// testdata, in its JSON), the ReplicaSet and the Job; watch events come from
// the events channel.
type apiServer struct {
	t         *testing.T
	watchList bool // a 1.34+ server: the initial list streamed as watch events
	events    chan string
	mu        sync.Mutex
	requests  []string
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, r.URL.Path+"?"+r.URL.RawQuery)
	a.mu.Unlock()
	file := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			a.t.Error(err)
		}
		return b
	}
	status := func(code int, reason, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/api/v1/pods":
		if q.Get("fieldSelector") != "spec.nodeName=node1" {
			status(400, "BadRequest", "test server: want fieldSelector spec.nodeName=node1, got "+q.Get("fieldSelector"))
			return
		}
		if q.Get("watch") != "true" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(file("pods-node1.json"))
			return
		}
		if q.Get("sendInitialEvents") == "true" && !a.watchList {
			status(422, "Invalid", `ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		if q.Get("sendInitialEvents") == "true" {
			var list struct {
				Metadata struct {
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
				Items []map[string]any `json:"items"`
			}
			if err := json.Unmarshal(file("pods-node1.json"), &list); err != nil {
				a.t.Error(err)
			}
			for _, it := range list.Items {
				it["kind"], it["apiVersion"] = "Pod", "v1"
				b, _ := json.Marshal(map[string]any{"type": "ADDED", "object": it})
				w.Write(append(b, '\n'))
			}
			fmt.Fprintf(w, `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":%q,"creationTimestamp":null,"annotations":{"k8s.io/initial-events-end":"true"}},"spec":{"containers":null},"status":{}}}`+"\n", list.Metadata.ResourceVersion)
		}
		fl.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-a.events:
				w.Write([]byte(ev + "\n"))
				fl.Flush()
			}
		}
	case "/apis/apps/v1/namespaces/bookinfo/replicasets/productpage-v1-5f9dbcd669":
		w.Header().Set("Content-Type", "application/json")
		w.Write(file("replicaset-productpage.json"))
	case "/apis/batch/v1/namespaces/ops/jobs/backup-29000000":
		w.Header().Set("Content-Type", "application/json")
		w.Write(file("job-backup.json"))
	default:
		status(404, "NotFound", r.URL.Path+" not found")
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	for _, watchList := range []bool{true, false} {
		t.Run(fmt.Sprintf("watchList=%v", watchList), func(t *testing.T) { testWatch(t, watchList) })
	}
}

func testWatch(t *testing.T, watchList bool) {
	api := &apiServer{t: t, watchList: watchList, events: make(chan string)}
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := NewIndex()
	var clock atomic.Int64
	start := time.Now()
	x.now = func() time.Time { return start.Add(time.Duration(clock.Load())) }
	var logs testenv.Log
	log := slog.New(slog.NewTextHandler(&logs, nil))
	err := Watch(ctx, x, Options{Node: "node1", Config: &rest.Config{Host: srv.URL}, ProxyContainers: DefaultProxyContainers,
		Warner: &Warner{Log: log}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pods listed", func() bool { return x.Synced("api") })

	want := map[string]Meta{
		idProductpage: {Namespace: "bookinfo", Pod: "productpage-v1-5f9dbcd669-x7k2p", PodUID: "0f6e3d2a-7b1c-4e59-8a3d-2c9b1e7f4a01", Node: "node1",
			Workload: "productpage-v1", WorkloadKind: "Deployment", Container: "productpage", Apps: 1},
		idProxy: {Namespace: "bookinfo", Pod: "productpage-v1-5f9dbcd669-x7k2p", PodUID: "0f6e3d2a-7b1c-4e59-8a3d-2c9b1e7f4a01", Node: "node1",
			Workload: "productpage-v1", WorkloadKind: "Deployment", Container: "istio-proxy", Proxy: true, Apps: 1},
		idRatings: {Namespace: "bookinfo", Pod: "ratings-v1-0", PodUID: "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", Node: "node1",
			Workload: "ratings-v1", WorkloadKind: "StatefulSet", Container: "ratings", Apps: 1},
		idExporter: {Namespace: "monitoring", Pod: "node-exporter-4xq9m", PodUID: "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", Node: "node1",
			Workload: "node-exporter", WorkloadKind: "DaemonSet", Container: "node-exporter", Apps: 1},
		idBackup: {Namespace: "ops", Pod: "backup-29000000-q8z2v", PodUID: "3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f", Node: "node1",
			Workload: "backup", WorkloadKind: "CronJob", Container: "backup", Apps: 1},
		idDebugWeb: {Namespace: "default", Pod: "debug", PodUID: "4d5e6f7a-8b9c-4d0e-1f2a-3b4c5d6e7f80", Node: "node1",
			Workload: "debug", WorkloadKind: "Pod", Container: "web", Apps: 2},
		idDebugWorker: {Namespace: "default", Pod: "debug", PodUID: "4d5e6f7a-8b9c-4d0e-1f2a-3b4c5d6e7f80", Node: "node1",
			Workload: "debug", WorkloadKind: "Pod", Container: "worker", Apps: 2},
		idDebugLinkerd: {Namespace: "default", Pod: "debug", PodUID: "4d5e6f7a-8b9c-4d0e-1f2a-3b4c5d6e7f80", Node: "node1",
			Workload: "debug", WorkloadKind: "Pod", Container: "linkerd-proxy", Proxy: true, Apps: 2},
	}
	for id, w := range want {
		if got, ok := x.Container(id); !ok || got != w {
			t.Errorf("container %s…:\n got %+v %v\nwant %+v", id[:8], got, ok, w)
		}
	}
	services := map[string]string{idProductpage: "productpage-v1", idProxy: "productpage-v1", idDebugWeb: "web", idDebugWorker: "worker",
		idDebugLinkerd: "debug", idBackup: "backup"}
	for id, s := range services {
		if m, _ := x.Container(id); m.Service() != s {
			t.Errorf("container %s…: service %q, want %q", id[:8], m.Service(), s)
		}
	}
	if m, ok := x.Pod("0f6e3d2a-7b1c-4e59-8a3d-2c9b1e7f4a01"); !ok || m.Container != "productpage" || m.Workload != "productpage-v1" {
		t.Errorf("by pod UID: %+v %v", m, ok)
	}
	if m, ok := x.IP(netip.MustParseAddr("10.244.1.12")); !ok || m.Pod != "ratings-v1-0" {
		t.Errorf("by pod IP: %+v %v", m, ok)
	}
	if m, ok := x.IP(netip.MustParseAddr("192.168.10.21")); ok {
		t.Errorf("a host-network pod's IP (the node's) resolves to %s", m.Pod)
	}

	// The watch: productpage's container restarts with a new id, debug is
	// deleted, ratings-v1-0 leaves the node (the API server sends DELETED for
	// an object that leaves the field selector).
	f, err := os.Open(filepath.Join("testdata", "watch-node1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		api.events <- sc.Text()
	}
	waitFor(t, "the restarted container", func() bool { _, ok := x.Container(idRestarted); return ok })
	if _, ok := x.Container(idProductpage); ok {
		t.Error("the container id before the restart still resolves")
	}
	waitFor(t, "ratings leaving the node", func() bool { return x.Len() == 3 })
	// Deleted pods stay readable for the grace period: late spans keep their names.
	if m, ok := x.Container(idDebugWeb); !ok || m.Pod != "debug" {
		t.Errorf("a deleted pod within the grace period: %+v %v", m, ok)
	}
	if m, ok := x.Container(idRatings); !ok || m.Pod != "ratings-v1-0" {
		t.Errorf("a moved pod within the grace period: %+v %v", m, ok)
	}
	clock.Store(int64(x.Grace + time.Second))
	for _, id := range []string{idDebugWeb, idDebugWorker, idRatings} {
		if m, ok := x.Container(id); ok {
			t.Errorf("container %s… resolves after the grace period: %+v", id[:8], m)
		}
	}
	if m, ok := x.Container(idRestarted); !ok || m.Container != "productpage" {
		t.Errorf("live pod after the grace period of others: %+v %v", m, ok)
	}
	// Owners were looked up once each (cached).
	api.mu.Lock()
	defer api.mu.Unlock()
	n := 0
	for _, r := range api.requests {
		if strings.Contains(r, "/replicasets/") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d ReplicaSet requests, want 1 (cached): %v", n, api.requests)
	}
}

// TestUnreachable: an API server and a kubelet that refuse connections log
// once per cause, however often the informer retries, and lookups answer at
// once.
func TestUnreachable(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testenv.Log
	log := slog.New(slog.NewTextHandler(&logs, nil))
	warner := &Warner{Log: log}
	x := NewIndex()
	if err := Watch(ctx, x, Options{Node: "node1", Config: &rest.Config{Host: url}, Warner: warner, Logger: log}); err != nil {
		t.Fatal(err)
	}
	go PollKubelet(ctx, x, KubeletOptions{URL: url + "/pods", Interval: 100 * time.Millisecond, Warner: warner})
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(logs.String(), "workload metadata: api server") != 1 || strings.Count(logs.String(), "workload metadata: kubelet") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for both warnings:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Lookups answer from the index, never waiting for the API server: a
	// lookup that waited for its sync would not return while it is
	// unreachable. 1000 took well under a millisecond here; the bound is
	// one a waiting lookup breaks (the informer never syncs), not a speed.
	t0 := time.Now()
	looked := make(chan int)
	go func() {
		found := 0
		for i := 0; i < 1000; i++ {
			if _, ok := x.Container(idProductpage); ok {
				found++
			}
		}
		looked <- found
	}()
	select {
	case found := <-looked:
		if found != 0 {
			t.Errorf("%d of 1000 lookups found a container in an empty index", found)
		}
		t.Logf("1000 lookups took %v", time.Since(t0))
	case <-time.After(30 * time.Second):
		t.Fatalf("1000 lookups did not return in 30 s while the API server is unreachable")
	}
	time.Sleep(2 * time.Second) // the informer retries (backoff from 800 ms), the kubelet is polled 20 times
	if a, k := strings.Count(logs.String(), "workload metadata: api server"), strings.Count(logs.String(), "workload metadata: kubelet"); a != 1 || k != 1 {
		t.Errorf("warnings: api server %d, kubelet %d, want 1 each:\n%s", a, k, logs.String())
	}
	if x.Synced("api") || x.Len() != 0 {
		t.Error("synced without a server")
	}
}

// TestKubelet: with the API server unreachable, the kubelet's /pods (the
// same PodList JSON) fills the index; the workload of a ReplicaSet's pod
// comes from its pod-template-hash, a Job's pod names the Job.
func TestKubelet(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("s3cr3t\n"), 0o600)
	pods, err := os.ReadFile(filepath.Join("testdata", "pods-node1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int32
	kl := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pods" || r.Header.Get("Authorization") != "Bearer s3cr3t" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(pods)
	}))
	defer kl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := NewIndex()
	go PollKubelet(ctx, x, KubeletOptions{URL: kl.URL + "/pods", TokenFile: tok, InsecureTLS: true, Interval: time.Hour,
		ProxyContainers: DefaultProxyContainers})
	waitFor(t, "the kubelet's pods", func() bool { return x.Synced("kubelet") })
	for id, w := range map[string][2]string{idProductpage: {"productpage-v1", "Deployment"}, idProxy: {"productpage-v1", "Deployment"},
		idRatings: {"ratings-v1", "StatefulSet"}, idBackup: {"backup-29000000", "Job"}, idDebugWeb: {"debug", "Pod"}} {
		if m, ok := x.Container(id); !ok || m.Workload != w[0] || m.WorkloadKind != w[1] {
			t.Errorf("container %s…: %+v %v, want %s %s", id[:8], m, ok, w[1], w[0])
		}
	}
	if m, _ := x.Container(idProxy); !m.Proxy {
		t.Error("istio-proxy is no proxy")
	}
	if served.Load() != 1 {
		t.Errorf("kubelet asked %d times, want 1", served.Load())
	}
}

func TestStatic(t *testing.T) {
	x := NewIndex()
	x.AddStatic(StaticPod{NetNS: 4026532999, Interfaces: []string{"v-productpage"},
		Meta: Meta{Namespace: "bookinfo", Pod: "productpage", Workload: "productpage", WorkloadKind: "Deployment"}})
	m, ok := x.NetNS(4026532999)
	if !ok || m.Pod != "productpage" || m.Service() != "productpage" {
		t.Fatalf("netns: %+v %v", m, ok)
	}
	if m, ok := x.Interface("v-productpage"); !ok || m.Workload != "productpage" {
		t.Fatalf("interface: %+v %v", m, ok)
	}
	if _, ok := x.NetNS(1); ok {
		t.Fatal("unknown netns resolves")
	}
}

// BenchmarkContainer is the lookup on the capture path: one per span.
func BenchmarkContainer(b *testing.B) {
	x := NewIndex()
	for i := 0; i < 200; i++ { // a busy node's pods
		id := fmt.Sprintf("%064x", i)
		x.put(fmt.Sprint(i), &podEntry{meta: Meta{Pod: fmt.Sprint("pod-", i)}, containers: map[string]Meta{id: {Pod: fmt.Sprint("pod-", i)}}, source: "api"})
	}
	id := fmt.Sprintf("%064x", 77)
	for b.Loop() {
		if _, ok := x.Container(id); !ok {
			b.Fatal("miss")
		}
	}
}
