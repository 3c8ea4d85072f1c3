package spangen

import (
	"net/netip"
)

// Node names and addresses of the demo topology (demo/bookinfo mirrors them).
const (
	Node1 = "node1" // details, reviews
	Node2 = "node2" // loadgen, productpage, ratings

	// Ports inside every pod: the sidecar's inbound listener on the pod IP,
	// the application on loopback, the sidecar's outbound listener on loopback.
	InboundPort  = 9080
	AppPort      = 9081
	OutboundPort = 15001
)

// Pod is one simulated pod: a network namespace with an application and a
// sidecar proxy.
type Pod struct {
	Name        string // pod name, e.g. "productpage-v1"
	App         string // service name, e.g. "productpage"
	Node        string
	IP          netip.Addr
	VNIC        string // host side of the pod veth, in the node netns
	NetNS       uint64
	ProxyPID    uint32
	AppPID      uint32
	ProcessName string // application process name
	Cmdline     string
	ContainerID string

	eventLoop bool // one thread serves every request (Node.js)
	pool      int  // thread pool size (0: a new thread per request)
}

// NodeInfo describes a simulated node.
type NodeInfo struct {
	Name     string
	Underlay netip.Addr // address on the underlay veth carrying the tunnel
	NIC      string     // the underlay interface name
	NetNS    uint64
}

var nodes = map[string]NodeInfo{
	Node1: {Name: Node1, Underlay: netip.MustParseAddr("10.204.0.1"), NIC: "underlay1", NetNS: 4026532101},
	Node2: {Name: Node2, Underlay: netip.MustParseAddr("10.204.0.2"), NIC: "underlay2", NetNS: 4026532102},
}

// Nodes returns the two nodes of the topology.
func Nodes() []NodeInfo { return []NodeInfo{nodes[Node1], nodes[Node2]} }

func newPods() map[string]*Pod {
	mk := func(app, node, ip string, ns uint64, proxyPID, appPID uint32, proc, cmd string) *Pod {
		return &Pod{
			Name: app + "-v1", App: app, Node: node, IP: netip.MustParseAddr(ip),
			VNIC: "vnic-" + app, NetNS: ns, ProxyPID: proxyPID, AppPID: appPID,
			ProcessName: proc, Cmdline: cmd,
			ContainerID: containerID(app),
		}
	}
	pods := map[string]*Pod{
		"loadgen":     mk("loadgen", Node2, "10.203.2.10", 4026532210, 2101, 0, "curl", "curl -s http://productpage/productpage"),
		"productpage": mk("productpage", Node2, "10.203.2.11", 4026532211, 2201, 2202, "python3", "python3 productpage.py"),
		"ratings":     mk("ratings", Node2, "10.203.2.12", 4026532212, 2301, 2302, "node", "node ratings.js"),
		"details":     mk("details", Node1, "10.203.1.10", 4026532110, 1101, 1102, "ruby", "ruby details.rb"),
		"reviews":     mk("reviews", Node1, "10.203.1.11", 4026532111, 1201, 1202, "java", "java Reviews"),
	}
	pods["ratings"].eventLoop = true
	pods["reviews"].pool = 8
	return pods
}

func containerID(app string) string {
	// A stable 64-hex-digit id per pod, as a container runtime would show.
	const hexdig = "0123456789abcdef"
	b := make([]byte, 64)
	h := uint64(14695981039346656037)
	for i := range b {
		h ^= uint64(app[i%len(app)]) + uint64(i)
		h *= 1099511628211
		b[i] = hexdig[h>>60]
	}
	return string(b)
}
