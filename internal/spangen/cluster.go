package spangen

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// ClusterConfig spreads Bookinfo over many nodes: Instances copies of the
// topology, each in its own namespace, the pods of its first node on one
// cluster node and those of its second on another, so that every request
// crosses two nodes and every node serves parts of several instances.
type ClusterConfig struct {
	Nodes     int // cluster nodes, named node-000, node-001, …
	Instances int // Bookinfo instances, namespaces bookinfo-000, … (default Nodes)
	Seed      uint64
	Start     time.Time     // zero: 2026-01-01 UTC
	Interval  time.Duration // between two requests of one instance (default 1 s)
}

// Cluster generates the requests of every instance in time order.
type Cluster struct {
	cfg   ClusterConfig
	insts []*instance
	ids   map[string]*span.IDGenerator
}

type instance struct {
	gen       *Generator
	node1     string // the cluster node of the topology's Node1 pods
	node2     string // … and of Node2's
	salt      uint64 // keeps the instances' syscall trace ids apart
	next, gap int64  // start of its next request, and between two
}

// NodeName is the name of cluster node i.
func NodeName(i int) string { return fmt.Sprintf("node-%03d", i) }

// NewCluster returns a generator for cfg.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Nodes < 2 {
		cfg.Nodes = 2
	}
	if cfg.Instances <= 0 {
		cfg.Instances = cfg.Nodes
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	c := &Cluster{cfg: cfg, ids: map[string]*span.IDGenerator{}}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for i := 0; i < cfg.Instances; i++ {
		a := i % cfg.Nodes
		b := (a + 1 + (i/cfg.Nodes)%(cfg.Nodes-1)) % cfg.Nodes
		// Instances start at spread offsets, so requests of the cluster
		// interleave.
		start := cfg.Start.Add(time.Duration(r.Int64N(int64(cfg.Interval))))
		g := New(Config{Seed: cfg.Seed*1_000_003 + uint64(i), Start: start, Interval: cfg.Interval,
			Namespace: fmt.Sprintf("bookinfo-%03d", i)})
		c.insts = append(c.insts, &instance{gen: g, node1: NodeName(a), node2: NodeName(b), salt: r.Uint64(),
			next: start.UnixNano(), gap: int64(cfg.Interval)})
	}
	for i := 0; i < cfg.Nodes; i++ {
		c.ids[NodeName(i)] = span.NewIDGenerator(NodeName(i), cfg.Start)
	}
	return c
}

// Until returns the requests of every instance that start before t (and
// after those returned before), their spans moved to the cluster's nodes
// with fresh span ids.
func (c *Cluster) Until(t time.Time) []Trace {
	var out []Trace
	end := t.UnixNano()
	for _, in := range c.insts {
		n := 0
		for in.next < end {
			n++
			in.next += in.gap
		}
		if n == 0 {
			continue
		}
		for _, tr := range in.gen.Next(n) {
			for i := range tr.Spans {
				s := &tr.Spans[i]
				if s.Node == Node1 {
					s.Node = in.node1
				} else {
					s.Node = in.node2
				}
				s.SpanID = c.ids[s.Node].Next()
				if s.SyscallTraceIDReq != 0 {
					s.SyscallTraceIDReq ^= in.salt
				}
				if s.SyscallTraceIDResp != 0 {
					s.SyscallTraceIDResp ^= in.salt
				}
			}
			out = append(out, tr)
		}
	}
	return out
}
