package spangen

import (
	"testing"
	"time"
)

// Every request crosses two cluster nodes, spans of different instances
// never share a span id or a syscall trace id, and every node serves
// parts of several instances.
func TestCluster(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := NewCluster(ClusterConfig{Nodes: 5, Instances: 10, Seed: 1, Start: start, Interval: 200 * time.Millisecond})
	a := c.Until(start.Add(time.Second))
	b := c.Until(start.Add(2 * time.Second))
	if len(a) < 40 || len(a) > 60 || len(b) < 40 || len(b) > 60 {
		t.Fatalf("%d then %d requests, want about 50 each", len(a), len(b))
	}
	ids := map[uint64]bool{}
	ctxOf := map[uint64]string{}
	nsOn := map[string]map[string]bool{}
	for _, tr := range append(a, b...) {
		nodes := map[string]bool{}
		ns := tr.Spans[0].Namespace // the loadgen's call; node spans have none
		for _, s := range tr.Spans {
			nodes[s.Node] = true
			if ids[s.SpanID] {
				t.Fatalf("span id %x twice", s.SpanID)
			}
			ids[s.SpanID] = true
			if s.StartNs >= start.Add(2*time.Second).UnixNano()+int64(time.Second) {
				t.Fatalf("span starts at %d, after the window", s.StartNs)
			}
			for _, id := range []uint64{s.SyscallTraceIDReq, s.SyscallTraceIDResp} {
				if id == 0 {
					continue
				}
				if o, ok := ctxOf[id]; ok && o != ns {
					t.Fatalf("syscall trace id %x in %s and %s", id, o, ns)
				}
				ctxOf[id] = ns
			}
			if s.Namespace != ns && s.Namespace != "" {
				t.Fatalf("one request in namespaces %s and %s", ns, s.Namespace)
			}
			if nsOn[s.Node] == nil {
				nsOn[s.Node] = map[string]bool{}
			}
			nsOn[s.Node][ns] = true
		}
		if len(nodes) != 2 {
			t.Fatalf("request on %d nodes: %v", len(nodes), nodes)
		}
	}
	if len(nsOn) != 5 {
		t.Fatalf("%d nodes used", len(nsOn))
	}
	for n, set := range nsOn {
		if len(set) < 2 {
			t.Fatalf("%s serves %d instances", n, len(set))
		}
	}
}
