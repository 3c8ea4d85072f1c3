package plugin

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
)

type edgeStat struct {
	calls, errors int
	durs          []float64
}

func (e *edgeStat) add(s *span.Span) {
	e.calls++
	if s.ResponseStatus.IsError() {
		e.errors++
	}
	e.durs = append(e.durs, msf(s.EndNs-s.StartNs))
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// proxyServices are service names that mean "a proxy", not a service of
// its own (the service rules of a mesh name every sidecar alike).
var proxyServices = map[string]bool{"sidecar": true, "proxy": true, "envoy": true, "istio-proxy": true,
	"linkerd-proxy": true, "nginx": true}

// IsProxy reports whether a span was captured in a proxy (a sidecar).
func IsProxy(s *span.Span) bool {
	if s.Service != "" {
		return proxyServices[strings.ToLower(s.Service)]
	}
	return proxyServices[strings.ToLower(s.ProcessName)]
}

type podKey struct {
	node  string
	netns uint64
	pod   string
}

func podOf(s *span.Span) podKey {
	if s.Pod != "" {
		return podKey{pod: s.Namespace + "/" + s.Pod}
	}
	return podKey{node: s.Node, netns: s.NetNS}
}

// mapNames names the node of each span in a service map: a service's spans
// take the service; a proxy's take the service of the application in the
// same pod (by pod, or by node and network namespace when the pod is not
// known) with " (proxy)", else the pod's name with " (proxy)", else the
// proxy's name and network namespace. Never one node for every sidecar.
type mapNames struct {
	app map[podKey]string
}

func newMapNames(spans []span.Span) *mapNames {
	votes := map[podKey]map[string]int{}
	for i := range spans {
		s := &spans[i]
		if IsProxy(s) || !s.TapSide.IsProcess() || (s.Pod == "" && s.NetNS == 0) {
			continue
		}
		k := podOf(s)
		if votes[k] == nil {
			votes[k] = map[string]int{}
		}
		votes[k][appName(s)]++
	}
	m := &mapNames{app: map[podKey]string{}}
	for k, v := range votes {
		best := ""
		for name, n := range v {
			if best == "" || n > v[best] || (n == v[best] && name < best) {
				best = name
			}
		}
		m.app[k] = best
	}
	return m
}

// appName is a service's node: its service, else its pod, else its process.
func appName(s *span.Span) string {
	if s.Service == "" && s.Pod != "" {
		return s.Pod
	}
	return ServiceName(s)
}

func (m *mapNames) name(s *span.Span) string {
	if !IsProxy(s) {
		return appName(s)
	}
	if app := m.app[podOf(s)]; app != "" {
		return app + " (proxy)"
	}
	if s.Pod != "" {
		return s.Pod + " (proxy)"
	}
	if s.NetNS != 0 {
		return fmt.Sprintf("%s (netns %d on %s)", ServiceName(s), s.NetNS, s.Node)
	}
	return ServiceName(s)
}

// reqKey pairs a client span with the server span of the same request:
// the request's first tcp sequence number and the connection's addresses.
type reqKey struct {
	seq  uint32
	a, b netip.AddrPort
}

type mapEdge struct{ from, to string }

// serviceMap is the graph before it becomes frames.
type serviceMap struct {
	nodes   map[string]*edgeStat
	edges   map[mapEdge]*edgeStat
	members map[string]map[string]bool // node → services of its spans
}

func (m *serviceMap) note(node string, s *span.Span) {
	if m.members[node] == nil {
		m.members[node] = map[string]bool{}
	}
	m.members[node][s.Service] = true
	if m.nodes[node] == nil {
		m.nodes[node] = &edgeStat{}
	}
}

// buildServiceMap pairs the spans into nodes and edges.
func buildServiceMap(spans []span.Span) *serviceMap {
	names := newMapNames(spans)
	m := &serviceMap{nodes: map[string]*edgeStat{}, edges: map[mapEdge]*edgeStat{}, members: map[string]map[string]bool{}}
	// Both addresses when no NAT sits between; one side each otherwise.
	full := map[reqKey]string{}
	byClient := map[reqKey]string{}
	byServer := map[reqKey]string{}
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapServerProcess {
			continue
		}
		n := names.name(s)
		m.note(n, s)
		m.nodes[n].add(s)
		if s.ReqTCPSeq != 0 {
			c, sv := netip.AddrPortFrom(s.ClientIP, s.ClientPort), netip.AddrPortFrom(s.ServerIP, s.ServerPort)
			full[reqKey{s.ReqTCPSeq, c, sv}] = n
			byClient[reqKey{seq: s.ReqTCPSeq, a: c}] = n
			byServer[reqKey{seq: s.ReqTCPSeq, b: sv}] = n
		}
	}
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapClientProcess {
			continue
		}
		c, sv := netip.AddrPortFrom(s.ClientIP, s.ClientPort), netip.AddrPortFrom(s.ServerIP, s.ServerPort)
		to, ok := "", false
		if s.ReqTCPSeq != 0 {
			if to, ok = full[reqKey{s.ReqTCPSeq, c, sv}]; !ok {
				if to, ok = byClient[reqKey{seq: s.ReqTCPSeq, a: c}]; !ok {
					to, ok = byServer[reqKey{seq: s.ReqTCPSeq, b: sv}]
				}
			}
		}
		if !ok {
			to = addrPort(s.ServerIP, s.ServerPort)
			if m.nodes[to] == nil {
				m.nodes[to] = &edgeStat{}
			}
		}
		from := names.name(s)
		m.note(from, s)
		k := mapEdge{from, to}
		if m.edges[k] == nil {
			m.edges[k] = &edgeStat{}
		}
		m.edges[k].add(s)
	}
	return m
}

// focus keeps the nodes of the services (and their proxies) and every edge
// that touches them, whole.
func (m *serviceMap) focus(services Strings) {
	if len(services) == 0 {
		return
	}
	match := func(n string) bool {
		for _, svc := range services {
			if n == svc || strings.HasPrefix(n, svc+" (") || m.members[n][svc] {
				return true
			}
		}
		return false
	}
	keep := map[string]bool{}
	for n := range m.nodes {
		if match(n) {
			keep[n] = true
		}
	}
	for k := range m.edges {
		if match(k.from) || match(k.to) {
			keep[k.from], keep[k.to] = true, true
		} else {
			delete(m.edges, k)
		}
	}
	for n := range m.nodes {
		if !keep[n] {
			delete(m.nodes, n)
		}
	}
}

// stat is a node-graph stat field: numbers with a unit, so the node graph
// shows units and its list view sorts by value.
func stat(name, title, unit string, v []float64) *data.Field {
	if v == nil {
		v = []float64{}
	}
	return data.NewField(name, nil, v).SetConfig(&data.FieldConfig{DisplayName: title, Unit: unit})
}

func (e *edgeStat) errorRatio() float64 {
	if e.calls == 0 {
		return 0
	}
	return float64(e.errors) / float64(e.calls)
}

// ServiceMapFrames are the node graph's nodes and edges: services (and the
// proxies of their pods) as nodes with the calls they served, p50 and p99
// latency and error ratio; calls between them as edges. Server process
// spans give the nodes; client process spans, paired with the server span
// of the same request (tcp sequence plus addresses), give the edges. A
// client span without its server span ends at the server address. With
// services set, the map keeps those services' nodes and the edges that
// touch them, whole. Stats are numbers with units.
func ServiceMapFrames(spans []span.Span, services Strings) (nodes, edges *data.Frame) {
	m := buildServiceMap(spans)
	m.focus(services)
	nodeNames := make([]string, 0, len(m.nodes))
	for n := range m.nodes {
		nodeNames = append(nodeNames, n)
	}
	sort.Strings(nodeNames)
	var id []string
	var calls, p50, p99, arcErr, arcOK []float64
	for _, n := range nodeNames {
		st := m.nodes[n]
		id = append(id, n)
		calls = append(calls, float64(st.calls))
		p50 = append(p50, pct(st.durs, 0.5))
		p99 = append(p99, pct(st.durs, 0.99))
		arcErr = append(arcErr, st.errorRatio())
		arcOK = append(arcOK, 1-st.errorRatio())
	}
	nodes = data.NewFrame("nodes",
		data.NewField("id", nil, id),
		data.NewField("title", nil, id),
		stat("mainstat", "Calls", "none", calls),
		stat("secondarystat", "p50", "ms", p50),
		stat("detail__p99", "p99", "ms", p99),
		stat("detail__errors", "Errors", "percentunit", arcErr),
		data.NewField("arc__errors", nil, arcErr).SetConfig(&data.FieldConfig{Color: map[string]any{"mode": "fixed", "fixedColor": "red"}}),
		data.NewField("arc__ok", nil, arcOK).SetConfig(&data.FieldConfig{Color: map[string]any{"mode": "fixed", "fixedColor": "green"}}),
	)
	nodes.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	return nodes, m.edgeFrame()
}

func (m *serviceMap) edgeFrame() *data.Frame {
	keys := make([]mapEdge, 0, len(m.edges))
	for k := range m.edges {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].from != keys[j].from {
			return keys[i].from < keys[j].from
		}
		return keys[i].to < keys[j].to
	})
	var eid, src, dst []string
	var calls, p50, errs []float64
	for _, k := range keys {
		st := m.edges[k]
		eid = append(eid, k.from+"->"+k.to)
		src = append(src, k.from)
		dst = append(dst, k.to)
		calls = append(calls, float64(st.calls))
		p50 = append(p50, pct(st.durs, 0.5))
		errs = append(errs, st.errorRatio())
	}
	edges := data.NewFrame("edges",
		data.NewField("id", nil, eid),
		data.NewField("source", nil, src),
		data.NewField("target", nil, dst),
		stat("mainstat", "Calls", "none", calls),
		stat("secondarystat", "p50", "ms", p50),
		stat("detail__errors", "Errors", "percentunit", errs),
	)
	edges.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	return edges
}
