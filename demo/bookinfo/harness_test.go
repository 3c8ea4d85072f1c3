//go:build linux

package bookinfo

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/inflight"
	"github.com/zerotrace/zerotrace/internal/testenv"

	"github.com/zerotrace/zerotrace/pkg/plugin/pluginclient"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

var pods = []string{"loadgen", "productpage", "ratings", "details", "reviews"}

// settle is how long the tests wait after the traffic before they read the
// shards: a batch every second, a seal every two, and time for assembly
// rules that need a request's spans to have settled.
const settle = 20 * time.Second

// requireDemo needs root and the runtimes of the demo plus binaries
// (bash .ci/install).
func requireDemo(t *testing.T, binaries ...string) {
	t.Helper()
	testenv.RequireRoot(t) // network namespaces, eBPF, AF_PACKET
	testenv.RequireBinaries(t, append([]string{"ip", "nginx", "python3", "ruby", "java", "javac", "node", "curl"}, binaries...)...)
}

// buildBinaries builds zerotrace and the plugin binary into a temporary
// directory and returns it.
func buildBinaries(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "bin")
	for _, b := range []struct{ out, pkg string }{{"zerotrace", "./collector/cmd/zerotrace"}, {"gpx_zerotrace", "./pkg"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	return bin
}

// demo is one running copy of the demo (one variant), with its own
// namespace prefix and run directory, and the plugin binary reading its
// shards.
type demo struct {
	variant  string
	prefix   string // namespace prefix
	run      string // ZT_DEMO_RUN
	env      []string
	dataDirs []string
	inode    map[uint64]string // pod of each pod namespace
	client   *pluginclient.Client
	xrid     string // the X-Request-ID the load generator sends (the variant's CLIENT_XRID)
	url      string // what the load generator asks for: HTTPS to its sidecar in the TLS variants
	// encrypted: a TLS variant (up made $RUN/certs). Its spans of encrypted
	// connections that carry no L7 (a packet span of TLS records, the
	// ciphertext side of a proxy whose TLS is not read) are attributed by
	// their connection like the others and placed by its server address.
	encrypted bool
	// truthHop: the hop of each attributed span's logged request (set by
	// observe), which label gives a span whose resource names none.
	truthHop map[uint64]string
}

// startDemo runs `up --variant variant` under its own namespace prefix (so
// that it runs beside a demo someone started) and starts the plugin binary
// on its shards. Cleanup tears it down.
func startDemo(t *testing.T, bin, variant string) *demo {
	return startDemoWith(t, bin, variant, nil, nil)
}

// startDemoWith is startDemo with more environment for up and a change to
// the plugin's options (the object-store test: a bucket instead of the
// directories).
func startDemoWith(t *testing.T, bin, variant string, env []string, plugin func(*pluginclient.Options)) *demo {
	run := filepath.Join(t.TempDir(), "demo-"+variant)
	d := &demo{variant: variant, run: run, prefix: fmt.Sprintf("zt-demo-%d", os.Getpid()),
		dataDirs: []string{filepath.Join(run, "data", "node1"), filepath.Join(run, "data", "node2")}}
	d.env = append(os.Environ(), "ZT_DEMO_RUN="+run, "ZT_BIN="+filepath.Join(bin, "zerotrace"), "ZT_DEMO_NS="+d.prefix)
	d.env = append(d.env, env...)
	if keep := os.Getenv("ZT_DEMO_KEEP"); keep != "" {
		// Cleanups run last first: this copy runs after down (the
		// collectors flushed) and before the temporary directory goes.
		t.Cleanup(func() {
			dst := filepath.Join(keep, strings.NewReplacer("/", "_").Replace(t.Name()))
			os.RemoveAll(dst)
			os.MkdirAll(keep, 0o755)
			if out, err := exec.Command("cp", "-a", run, dst).CombinedOutput(); err != nil {
				t.Logf("keeping the run (ZT_DEMO_KEEP): %v %s", err, out)
			}
		})
	}
	t.Cleanup(d.down)
	up := exec.Command("bash", "up", "--variant", variant)
	up.Env = d.env
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("demo up --variant %s: %v\n%s", variant, err, out)
	}
	if b, err := os.ReadFile(filepath.Join(run, "client-xrid")); err == nil {
		d.xrid = string(b)
	}
	b, err := os.ReadFile(filepath.Join(run, "client-url"))
	if err != nil {
		t.Fatalf("demo up --variant %s wrote no client URL: %v", variant, err)
	}
	d.url = string(b)
	if _, err := os.Stat(filepath.Join(run, "certs")); err == nil {
		d.encrypted = true
	}
	d.inode = map[uint64]string{}
	for _, p := range pods {
		fi, err := os.Stat("/run/netns/" + d.prefix + "-" + p)
		if err != nil {
			t.Fatal(err)
		}
		d.inode[fi.Sys().(*syscall.Stat_t).Ino] = p
	}
	opts := pluginclient.Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
		JSONData: map[string]any{"dataDirs": d.dataDirs}}
	if plugin != nil {
		plugin(&opts)
	}
	c, err := pluginclient.Start(filepath.Join(bin, "gpx_zerotrace"), opts)
	if err != nil {
		t.Fatal(err)
	}
	d.client = c
	return d
}

// down stops the plugin binary and runs the demo's down script.
func (d *demo) down() {
	if d.client != nil {
		d.client.Close()
		d.client = nil
	}
	cmd := exec.Command("bash", "down")
	cmd.Env = d.env
	cmd.CombinedOutput()
}

// request sends one request from the loadgen pod through its sidecar,
// carrying marker in the X-ZT-Marker header (never in the URL: the tracer
// reads URLs), and the variant's fixed X-Request-ID if it has one; over
// HTTPS, verified with the demo CA, where the variant's apps speak TLS.
func (d *demo) request(marker string) error {
	args := []string{"netns", "exec", d.prefix + "-loadgen", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
		"--max-time", "20", "-H", "Host: productpage", "-H", "X-ZT-Marker: " + marker}
	if d.xrid != "" {
		args = append(args, "-H", "X-Request-ID: "+d.xrid)
	}
	if strings.HasPrefix(d.url, "https:") {
		args = append(args, "--cacert", filepath.Join(d.run, "certs", "ca.pem"))
	}
	out, err := exec.Command("ip", append(args, d.url)...).CombinedOutput()
	if err != nil || string(out) != "200" {
		return fmt.Errorf("request %s: %v %s", marker, err, out)
	}
	return nil
}

// traffic sends nSeq requests one after the other, then a batch of nConc
// at once, each with a marker of its own, waits for the shards to settle,
// reads them and returns the markers, the concurrent ones by batch, and
// what the store holds. A loaded machine can run a batch almost one
// request at a time, which shows nothing about concurrency
// (docs/testing.md rule 4): while no batch's stored curl spans show
// minOverlap requests in flight at once, it sends another batch under new
// markers and settles again (concurrentBatches), and fails unless one
// batch reached the floor. The caller judges every batch.
func (d *demo) traffic(t *testing.T, nSeq, nConc, minOverlap int) (seq []string, conc [][]string, o observed) {
	t.Helper()
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	for i := range nSeq {
		seq = append(seq, fmt.Sprintf("%s-%s-s%d", runID, d.variant, i))
	}
	d.send(t, seq, false)
	best, rounds := concurrentBatches(t.Logf, minOverlap, func(round int) int {
		var batch []string
		for i := range nConc {
			m := fmt.Sprintf("%s-%s-c%d", runID, d.variant, i)
			if round > 1 {
				m = fmt.Sprintf("%s-%s-b%d-c%d", runID, d.variant, round, i)
			}
			batch = append(batch, m)
		}
		d.send(t, batch, true)
		time.Sleep(settle)
		o = d.observe(t)
		conc = append(conc, batch)
		return inflight.Max(o.curls(batch))
	})
	if best < minOverlap {
		t.Errorf("at most %d of %d concurrent requests in flight at once (curl's spans) in %d batches, want %d in one", best, nConc, rounds, minOverlap)
	}
	return seq, conc, o
}

// overlapRounds bounds how many concurrent batches traffic sends until one
// shows its overlap floor.
const overlapRounds = 3

// concurrentBatches calls batch(1), batch(2), … (each sends a batch and
// returns how many of its requests were in flight at once) until one
// returns at least floor, at most overlapRounds times, logging each batch
// that fell short; it returns the largest overlap and the batches sent.
func concurrentBatches(logf func(string, ...any), floor int, batch func(round int) int) (best, rounds int) {
	for rounds < overlapRounds {
		rounds++
		n := batch(rounds)
		best = max(best, n)
		if n >= floor {
			break
		}
		logf("concurrent batch %d: at most %d requests in flight at once (curl's spans), want %d", rounds, n, floor)
	}
	return best, rounds
}

// concurrentName names batch i (from 0) of the concurrent requests in a
// test's output: "concurrent", then "concurrent batch 2", ….
func concurrentName(i int) string {
	if i == 0 {
		return "concurrent"
	}
	return fmt.Sprintf("concurrent batch %d", i+1)
}

// observed is what the collectors stored, with the ground truth.
type observed struct {
	all   []span.Span
	byID  map[uint64]span.Span
	truth map[connKey][]truthLine
	attribution
}

// curls returns the stored curl span (the load generator's call) of each
// request of markers that has one.
func (o observed) curls(markers []string) []span.Span {
	of := map[string]span.Span{}
	for _, s := range o.all {
		if m, ok := o.marker[s.SpanID]; ok && s.TapSide == span.TapClientProcess && s.ProcessName == "curl" {
			of[m] = s
		}
	}
	var out []span.Span
	for _, m := range markers {
		if s, ok := of[m]; ok {
			out = append(out, s)
		}
	}
	return out
}

// observe reads every stored span and maps them to their requests.
func (d *demo) observe(t *testing.T) observed {
	t.Helper()
	truth, err := readTruth(d.run)
	if err != nil {
		t.Fatal(err)
	}
	o := observed{all: d.spans(t), byID: map[uint64]span.Span{}, truth: truth}
	for _, s := range o.all {
		o.byID[s.SpanID] = s
	}
	o.attribution = d.attribute(o.all, truth)
	d.truthHop = o.attribution.hop
	return o
}

// send sends one request per marker: one after the other, or all at once
// (started together, so that they overlap).
func (d *demo) send(t *testing.T, markers []string, concurrent bool) {
	t.Helper()
	if !concurrent {
		for _, m := range markers {
			if err := d.request(m); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(markers))
	for _, m := range markers {
		wg.Add(1)
		go func() { defer wg.Done(); <-start; errs <- d.request(m) }()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// spans reads every span the collectors stored.
func (d *demo) spans(t *testing.T) []span.Span {
	r, err := store.OpenReader(d.dataDirs...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	all, err := r.Search(context.Background(), store.SearchQuery{Limit: 1000000})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// traceRows are the rows of a trace frame.
type traceRows struct {
	ids, parents, services, names []string // parents: "" for a root
}

// trace asks the plugin binary, over Grafana's plugin protocol, for the
// trace assembled from span id (sent as 16 hex digits) and returns its span
// ids, parent ids, service names and operation names. It fails unless every
// span and parent id is 16 hex digits and no operation name carries a
// "[tap side]" suffix.
func (d *demo) trace(id uint64) (traceRows, error) {
	var tr traceRows
	resp, err := d.client.Query(context.Background(), map[string]any{"queryType": "trace", "spanId": span.FormatSpanID(id)},
		time.Now().Add(-time.Hour), time.Now())
	if err != nil {
		return tr, err
	}
	if resp.Error != "" || len(resp.Frames) == 0 {
		return tr, fmt.Errorf("trace query: %q, %d frames", resp.Error, len(resp.Frames))
	}
	f := resp.Frames[0]
	idf, _ := f.FieldByName("spanID")
	pf, _ := f.FieldByName("parentSpanID")
	sf, _ := f.FieldByName("serviceName")
	of, _ := f.FieldByName("operationName")
	if idf == nil || pf == nil || sf == nil || of == nil {
		return tr, fmt.Errorf("trace frame without spanID, parentSpanID, serviceName or operationName")
	}
	for i := 0; i < idf.Len(); i++ {
		tr.ids = append(tr.ids, idf.At(i).(string))
		tr.services = append(tr.services, sf.At(i).(string))
		tr.names = append(tr.names, of.At(i).(string))
		p := ""
		if v := pf.At(i).(*string); v != nil {
			p = *v
		}
		tr.parents = append(tr.parents, p)
		if !span.IsHexSpanID(tr.ids[i]) || (p != "" && !span.IsHexSpanID(p)) {
			return tr, fmt.Errorf("row %d: span id %q, parent %q: want 16 hex digits", i, tr.ids[i], p)
		}
		if strings.HasSuffix(tr.names[i], "]") {
			return tr, fmt.Errorf("row %d: operation name %q carries a suffix", i, tr.names[i])
		}
	}
	return tr, nil
}

// spanID reads a span id of a trace frame.
func spanID(s string) uint64 {
	n, _ := span.ParseSpanID(s)
	return n
}

// label names a span's observation point the way internal/spangen.Points does:
// "hop: observer tap-side", hop from the request path (a span without one:
// from the ground truth of its request, d.truthHop, else by its server in
// the TLS variants), observer from the span's pod namespace and process, or
// its capture NIC.
func (d *demo) label(s span.Span) string {
	hop := ""
	switch {
	case strings.HasPrefix(s.RequestResource, "/productpage"):
		hop = "loadgen>productpage"
	case strings.HasPrefix(s.RequestResource, "/details/"):
		hop = "productpage>details"
	case strings.HasPrefix(s.RequestResource, "/reviews/"):
		hop = "productpage>reviews"
	case strings.HasPrefix(s.RequestResource, "/ratings/"):
		hop = "reviews>ratings"
	case s.RequestResource == "" && d.truthHop[s.SpanID] != "":
		// No resource (a response whose request was not read, TLS seen
		// as ciphertext): the hop of the logged request the span is
		// attributed to, so that it is judged at its own point.
		hop = d.truthHop[s.SpanID]
	case d.encrypted && s.RequestResource == "":
		hop = serverHop(d.inode[s.NetNS], s.ServerIP, s.ServerPort)
	}
	var who string
	if s.SignalSource == span.SourcePacket {
		switch {
		case strings.HasPrefix(s.CaptureNIC, "v-"):
			who = strings.TrimPrefix(s.CaptureNIC, "v-") + "-vnic"
		case strings.HasPrefix(s.CaptureNIC, "underlay"):
			who = "node" + strings.TrimPrefix(s.CaptureNIC, "underlay") + "-nic"
		}
	} else {
		who = d.inode[s.NetNS]
		if s.ProcessName == "nginx" {
			who += "-proxy"
		}
	}
	return hop + ": " + who + " " + s.TapSide.String()
}

// serverHop names the hop of a connection by its server, for spans that
// carry no resource (TLS seen as ciphertext): a pod's sidecar (pod IP, port
// 9080) or, on loopback in pod, the application (9081) or the sidecar's
// outbound listener (15001, where the pod makes one kind of call). "" when
// the server does not tell (productpage's outbound listener serves two hops).
func serverHop(pod string, ip netip.Addr, port uint16) string {
	callee := map[string]string{"10.203.2.11": "productpage", "10.203.1.10": "details", "10.203.1.11": "reviews", "10.203.2.12": "ratings"}
	caller := callerOf
	switch {
	case port == 9080 && callee[ip.Unmap().String()] != "":
		c := callee[ip.Unmap().String()]
		return caller[c] + ">" + c
	case ip.Unmap().IsLoopback() && port == 9081 && caller[pod] != "":
		return caller[pod] + ">" + pod
	case ip.Unmap().IsLoopback() && port == 15001 && pod == "loadgen":
		return "loadgen>productpage"
	case ip.Unmap().IsLoopback() && port == 15001 && pod == "reviews":
		return "reviews>ratings"
	}
	return ""
}

// The ground truth. Every server in the demo (each nginx sidecar's access
// log, each application) writes one line per request it receives:
//
//	ZTGT <X-ZT-Marker> <client ip> <client port> <server ip> <server port> <n> [<host>]
//
// where n is the request's position on its connection (nginx's
// $connection_requests; the applications count per connection) and host,
// in the sidecars' lines, the request's Host: the service called, which
// names the hop on a pod's outbound listener (productpage calls details and
// reviews through the same one). Each line's hop (truthHop) is what the
// judge knows of a span's point when the span itself does not tell it (no
// resource: a response without its request, TLS seen as ciphertext). The marker
// is a header the tracer does not parse; curl sets it and every service
// copies it onto its downstream calls. Every TCP connection of a request has
// a server that logs it, so each connection's requests are known in order.
// A span is mapped to its request by its connection (the 4-tuple, plus the
// pod for loopback addresses, which every pod has) and its position among
// the spans of its observation point on that connection, ordered by start
// time: HTTP/1.1 without pipelining serves a connection's requests one after
// the other, so that order is the order of the log. An observation point
// that has not exactly one span per logged request (a dropped frame, a
// split span) is mapped by time instead: a span belongs to the request whose
// spans at the complete points of the connection cover an interval it
// overlaps, if exactly one does. Markers are matched as whole strings.

// truthLine is one logged request.
type truthLine struct {
	marker string
	n      int
	hop    string // "caller>callee" (truthHop), "" when the line does not tell
}

// callerOf is the pod that calls each service of the request path.
var callerOf = map[string]string{"productpage": "loadgen", "details": "productpage", "reviews": "productpage", "ratings": "reviews"}

// truthHop names the hop of a request logged in pod's files: on the
// sidecar's outbound listener (port 15001) the pod calls the service its
// Host names; elsewhere (the sidecar's inbound listener, the application)
// the pod's caller calls the pod. "" when that is no hop of the request path.
func truthHop(pod string, server netip.AddrPort, host string) string {
	if server.Addr().IsLoopback() && server.Port() == 15001 {
		if callerOf[host] != pod {
			return ""
		}
		return pod + ">" + host
	}
	if callerOf[pod] == "" {
		return ""
	}
	return callerOf[pod] + ">" + pod
}

// connKey identifies a TCP connection of the demo.
type connKey struct {
	pod            string // for loopback connections only: the pod namespace
	client, server netip.AddrPort
}

func makeConnKey(pod string, client, server netip.AddrPort) connKey {
	if !server.Addr().IsLoopback() {
		pod = ""
	}
	return connKey{pod: pod, client: client, server: server}
}

// readTruth reads the ZTGT lines of every pod's sidecar (truth.log) and
// application (app.log), in the order they were written, per connection.
func readTruth(run string) (map[connKey][]truthLine, error) {
	conns := map[connKey][]truthLine{}
	for _, p := range pods {
		for _, f := range []string{"truth.log", "app.log"} {
			file, err := os.Open(filepath.Join(run, p, f))
			if os.IsNotExist(err) && f == "app.log" {
				continue // loadgen runs no application
			}
			if err != nil {
				return nil, err
			}
			sc := bufio.NewScanner(file)
			for line := 1; sc.Scan(); line++ {
				if !strings.HasPrefix(sc.Text(), "ZTGT ") {
					continue
				}
				fs := strings.Fields(sc.Text())
				if len(fs) != 7 && len(fs) != 8 {
					file.Close()
					return nil, fmt.Errorf("%s/%s:%d: want 7 or 8 fields: %q", p, f, line, sc.Text())
				}
				ca, err1 := netip.ParseAddr(fs[2])
				cp, err2 := strconv.ParseUint(fs[3], 10, 16)
				sa, err3 := netip.ParseAddr(fs[4])
				sp, err4 := strconv.ParseUint(fs[5], 10, 16)
				n, err5 := strconv.Atoi(fs[6])
				if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
					file.Close()
					return nil, fmt.Errorf("%s/%s:%d: bad line %q", p, f, line, sc.Text())
				}
				k := makeConnKey(p, netip.AddrPortFrom(ca.Unmap(), uint16(cp)), netip.AddrPortFrom(sa.Unmap(), uint16(sp)))
				host := ""
				if len(fs) == 8 {
					host = fs[7]
				}
				conns[k] = append(conns[k], truthLine{marker: fs[1], n: n, hop: truthHop(p, k.server, host)})
			}
			file.Close()
			if err := sc.Err(); err != nil {
				return nil, err
			}
		}
	}
	// Positions must run 1, 2, … on each connection (a reused 4-tuple starts
	// over at 1, or counts on where a server counts per client address).
	for k, ls := range conns {
		for i, l := range ls {
			if l.n != 1 && (i == 0 || l.n != ls[i-1].n+1) {
				return nil, fmt.Errorf("ground truth: connection %v: position %d after %d", k, l.n, ls[max(i-1, 0)].n)
			}
		}
	}
	return conns, nil
}

// attribution maps spans to the request (marker) they belong to.
type attribution struct {
	marker       map[uint64]string // span id → marker; absent: not attributed
	hop          map[uint64]string // span id → the hop of its logged request (truthLine.hop)
	unattributed []span.Span       // spans on a logged connection whose request is ambiguous
	unknownConn  int               // spans on no logged connection (or not HTTP/1)
}

// attribute maps every span to its request through the ground truth.
func (d *demo) attribute(all []span.Span, truth map[connKey][]truthLine) attribution {
	type point struct {
		node   string
		src    span.SignalSource
		tap    span.TapSide
		netns  uint64
		nic    string
		pid    uint32
		onConn connKey
	}
	a := attribution{marker: map[uint64]string{}, hop: map[uint64]string{}}
	byConn := map[connKey]map[point][]span.Span{}
	for _, s := range all {
		if s.L7Protocol != span.L7HTTP1 && (!d.encrypted || s.L7Protocol != span.L7Unknown) {
			a.unknownConn++ // the demo speaks only HTTP/1 (TLS variants: over TLS, read or not)
			continue
		}
		k := makeConnKey(d.inode[s.NetNS], netip.AddrPortFrom(s.ClientIP.Unmap(), s.ClientPort), netip.AddrPortFrom(s.ServerIP.Unmap(), s.ServerPort))
		if _, ok := truth[k]; !ok {
			a.unknownConn++
			continue
		}
		if byConn[k] == nil {
			byConn[k] = map[point][]span.Span{}
		}
		p := point{s.Node, s.SignalSource, s.TapSide, s.NetNS, s.CaptureNIC, s.PID, k}
		byConn[k][p] = append(byConn[k][p], s)
	}
	for k, points := range byConn {
		reqs := truth[k]
		type hull struct{ from, to int64 }
		hulls := make([]hull, len(reqs))
		for i := range hulls {
			hulls[i] = hull{from: 1<<63 - 1, to: -1 << 63}
		}
		var incomplete [][]span.Span
		for _, ss := range points {
			slices.SortFunc(ss, func(x, y span.Span) int { return cmp.Compare(x.StartNs, y.StartNs) })
			if len(ss) != len(reqs) {
				incomplete = append(incomplete, ss)
				continue
			}
			for i, s := range ss {
				a.marker[s.SpanID], a.hop[s.SpanID] = reqs[i].marker, reqs[i].hop
				hulls[i] = hull{min(hulls[i].from, s.StartNs), max(hulls[i].to, s.EndNs)}
			}
		}
		for _, ss := range incomplete {
			for _, s := range ss {
				found := -1
				for i, h := range hulls {
					if h.from <= s.EndNs && s.StartNs <= h.to {
						if found >= 0 {
							found = -2
							break
						}
						found = i
					}
				}
				if len(reqs) == 1 {
					found = 0
				}
				if found < 0 {
					a.unattributed = append(a.unattributed, s)
					continue
				}
				a.marker[s.SpanID], a.hop[s.SpanID] = reqs[found].marker, reqs[found].hop
			}
		}
	}
	return a
}
