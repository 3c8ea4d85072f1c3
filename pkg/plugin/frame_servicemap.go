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

// ServiceMapFrames are the node graph's nodes and edges: services (and the
// proxies of their pods) as nodes with the calls they served, error rate
// and p50 latency; calls between them as edges. Server process spans give
// the nodes; client process spans, paired with the server span of the same
// request (tcp sequence plus addresses), give the edges. A client span
// without its server span ends at the server address. With service set, the
// map keeps that service's nodes and the edges that touch them, whole.
func ServiceMapFrames(spans []span.Span, service string) (nodes, edges *data.Frame) {
	names := newMapNames(spans)
	// Both addresses when no NAT sits between; one side each otherwise.
	full := map[reqKey]string{}
	byClient := map[reqKey]string{}
	byServer := map[reqKey]string{}
	nodeStats := map[string]*edgeStat{}
	members := map[string]map[string]bool{} // node → services of its spans
	note := func(node string, s *span.Span) {
		if members[node] == nil {
			members[node] = map[string]bool{}
		}
		members[node][s.Service] = true
		if nodeStats[node] == nil {
			nodeStats[node] = &edgeStat{}
		}
	}
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapServerProcess {
			continue
		}
		n := names.name(s)
		note(n, s)
		nodeStats[n].add(s)
		if s.ReqTCPSeq != 0 {
			c, sv := netip.AddrPortFrom(s.ClientIP, s.ClientPort), netip.AddrPortFrom(s.ServerIP, s.ServerPort)
			full[reqKey{s.ReqTCPSeq, c, sv}] = n
			byClient[reqKey{seq: s.ReqTCPSeq, a: c}] = n
			byServer[reqKey{seq: s.ReqTCPSeq, b: sv}] = n
		}
	}
	type ekey struct{ from, to string }
	edgeStats := map[ekey]*edgeStat{}
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
			if nodeStats[to] == nil {
				nodeStats[to] = &edgeStat{}
			}
		}
		from := names.name(s)
		note(from, s)
		k := ekey{from, to}
		if edgeStats[k] == nil {
			edgeStats[k] = &edgeStat{}
		}
		edgeStats[k].add(s)
	}
	if service != "" {
		match := func(n string) bool {
			return n == service || strings.HasPrefix(n, service+" (") || members[n][service]
		}
		keep := map[string]bool{}
		for n := range nodeStats {
			if match(n) {
				keep[n] = true
			}
		}
		for k := range edgeStats {
			if match(k.from) || match(k.to) {
				keep[k.from], keep[k.to] = true, true
			} else {
				delete(edgeStats, k)
			}
		}
		for n := range nodeStats {
			if !keep[n] {
				delete(nodeStats, n)
			}
		}
	}
	nodeNames := make([]string, 0, len(nodeStats))
	for n := range nodeStats {
		nodeNames = append(nodeNames, n)
	}
	sort.Strings(nodeNames)
	var id, title, mainStat, secStat []string
	var arcErr, arcOK []float64
	for _, n := range nodeNames {
		st := nodeStats[n]
		id = append(id, n)
		title = append(title, n)
		mainStat = append(mainStat, fmt.Sprintf("%d calls", st.calls))
		secStat = append(secStat, fmt.Sprintf("p50 %.2f ms", pct(st.durs, 0.5)))
		e := 0.0
		if st.calls > 0 {
			e = float64(st.errors) / float64(st.calls)
		}
		arcErr = append(arcErr, e)
		arcOK = append(arcOK, 1-e)
	}
	nodes = data.NewFrame("nodes",
		data.NewField("id", nil, id),
		data.NewField("title", nil, title),
		data.NewField("mainstat", nil, mainStat),
		data.NewField("secondarystat", nil, secStat),
		data.NewField("arc__errors", nil, arcErr).SetConfig(&data.FieldConfig{Color: map[string]any{"mode": "fixed", "fixedColor": "red"}}),
		data.NewField("arc__ok", nil, arcOK).SetConfig(&data.FieldConfig{Color: map[string]any{"mode": "fixed", "fixedColor": "green"}}),
	)
	nodes.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	keys := make([]ekey, 0, len(edgeStats))
	for k := range edgeStats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].from != keys[j].from {
			return keys[i].from < keys[j].from
		}
		return keys[i].to < keys[j].to
	})
	var eid, src, dst, emain, esec []string
	for _, k := range keys {
		st := edgeStats[k]
		eid = append(eid, k.from+"->"+k.to)
		src = append(src, k.from)
		dst = append(dst, k.to)
		emain = append(emain, fmt.Sprintf("%d calls, %.0f%% errors", st.calls, 100*float64(st.errors)/float64(st.calls)))
		esec = append(esec, fmt.Sprintf("p50 %.2f ms", pct(st.durs, 0.5)))
	}
	edges = data.NewFrame("edges",
		data.NewField("id", nil, eid),
		data.NewField("source", nil, src),
		data.NewField("target", nil, dst),
		data.NewField("mainstat", nil, emain),
		data.NewField("secondarystat", nil, esec),
	)
	edges.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	return nodes, edges
}
