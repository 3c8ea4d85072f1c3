//go:build linux

package bookinfo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zerotrace/zerotrace/internal/jaeger"
	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// TestExportToJaeger runs the demo with `zerotrace export` sending to a real
// Jaeger v2 (in-memory storage, OTLP gRPC) through a proxy the test cuts
// for 30 s, kills the exporter with SIGKILL twice (once while it sends,
// once while the backend is unreachable and it retries), and reads each of
// the 20 sequential and 32 concurrent requests' traces back from Jaeger's
// query API: the same spans (ids), the same parents and the same service
// names as Zerotrace's own assembly; no span twice.
func TestExportToJaeger(t *testing.T) {
	requireDemo(t)
	j := jaeger.Start(t)
	bin := buildBinaries(t)
	d := startDemo(t, bin, "bookinfo")
	px := startProxy(t, j.OTLPGRPC)
	ex := &exporterProc{bin: filepath.Join(bin, "zerotrace"), log: filepath.Join(d.run, "export.log"),
		args: []string{"export", "--endpoint", px.addr, "--insecure", "--checkpoint", filepath.Join(d.run, "export", "checkpoint"),
			"--metrics-addr", "", "--poll", "500ms", "--max-backoff", "2s", "--log-level", "debug"}}
	for _, dir := range d.dataDirs {
		ex.args = append(ex.args, "--data-dir", dir)
	}
	ex.start(t)
	t.Cleanup(ex.kill)

	// Faults while the traces are exported: a kill -9 while the first ones
	// are sent (they settle 15 s after their spans are read), a 30-s outage
	// starting before the restarted exporter's quiet period ends, a kill -9
	// while it retries during the outage.
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 27))
	faults := make(chan error, 1)
	start := time.Now()
	var exportedAtKill int
	go func() {
		faults <- func() error {
			time.Sleep(22*time.Second + time.Duration(rnd.IntN(4000))*time.Millisecond)
			b, _ := os.ReadFile(ex.log)
			exportedAtKill = strings.Count(string(b), "msg=exported")
			if err := ex.restart(); err != nil {
				return err
			}
			time.Sleep(time.Duration(1000+rnd.IntN(2000)) * time.Millisecond)
			px.down()
			time.Sleep(time.Duration(20000+rnd.IntN(6000)) * time.Millisecond)
			if err := ex.restart(); err != nil {
				return err
			}
			for time.Since(px.downAt) < 30*time.Second {
				time.Sleep(100 * time.Millisecond)
			}
			px.up()
			return nil
		}()
	}()
	// The sequential requests 600 ms apart, so that their traces settle one
	// after the other while the faults happen.
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var seq, conc []string
	for i := range 20 {
		m := fmt.Sprintf("%s-export-s%d", runID, i)
		if err := d.request(m); err != nil {
			t.Fatal(err)
		}
		seq = append(seq, m)
		time.Sleep(600 * time.Millisecond)
	}
	for i := range 32 {
		conc = append(conc, fmt.Sprintf("%s-export-c%d", runID, i))
	}
	d.send(t, conc, true)
	time.Sleep(settle)
	if err := <-faults; err != nil {
		t.Fatal(err)
	}
	t.Logf("faults: kill -9 at %s and %s, backend unreachable %s–%s", ex.kills[0].Sub(start).Round(time.Second),
		ex.kills[1].Sub(start).Round(time.Second), px.downAt.Sub(start).Round(time.Second), px.upAt.Sub(start).Round(time.Second))
	o := d.observe(t)

	// Zerotrace's own trace of each request, assembled over the shards.
	r, err := store.OpenReader(d.dataDirs...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seedOf := map[string]uint64{}
	for _, s := range o.all {
		if m, ok := o.marker[s.SpanID]; ok && s.TapSide == span.TapClientProcess && s.ProcessName == "curl" {
			seedOf[m] = s.SpanID
		}
	}
	markers := append(append([]string(nil), seq...), conc...)
	want := map[string]*trace.Trace{}
	for _, m := range markers {
		seed, ok := seedOf[m]
		if !ok {
			t.Errorf("%s: curl's span not stored", m)
			continue
		}
		tr, err := trace.Assemble(context.Background(), r, trace.Config{}, strconv.FormatUint(seed, 10), 0, 0)
		if err != nil {
			t.Errorf("%s: %v", m, err)
			continue
		}
		want[m] = tr
	}

	// Read them back from Jaeger until all match or 120 s have passed (the
	// quiet period, the retries after the outage).
	var matching, dupSpans, resent, complete int
	var lastErr map[string]error
	deadline := time.Now().Add(120 * time.Second)
	for {
		matching, dupSpans, resent, complete = 0, 0, 0, 0
		lastErr = map[string]error{}
		for _, m := range markers {
			tr := want[m]
			if tr == nil {
				continue
			}
			if len(tr.Spans) == 38 {
				complete++
			}
			dups, copies, err := compareJaeger(j, tr)
			dupSpans += dups
			resent += copies
			if err != nil {
				lastErr[m] = err
				continue
			}
			matching++
		}
		if matching == len(markers) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	fmt.Printf("otlp export: %d/%d traces match in Jaeger (%d with all 38 spans; %d spans duplicated; %d identical copies sent again after kill -9, kept once by Jaeger)\n",
		matching, len(markers), complete, dupSpans, resent)
	for m, err := range lastErr {
		t.Errorf("%s: %v", m, err)
	}
	if matching != len(markers) || dupSpans != 0 {
		b, _ := os.ReadFile(ex.log)
		t.Fatalf("%d/%d traces match, %d spans duplicated; exporter log:\n%s", matching, len(markers), dupSpans, tailLines(string(b), 40))
	}
	// The faults reached the exporter: it was restarted twice and retried.
	b, _ := os.ReadFile(ex.log)
	if n := strings.Count(string(b), "msg=export endpoint="); n != 3 {
		t.Errorf("exporter started %d times, want 3", n)
	}
	if !strings.Contains(string(b), "send failed, retrying") {
		t.Errorf("the exporter never retried: the outage did not reach it")
	}
	if exportedAtKill == 0 || exportedAtKill == strings.Count(string(b), "msg=exported") {
		t.Errorf("the first kill -9 came when %d of %d requests were acknowledged: not while exporting", exportedAtKill,
			strings.Count(string(b), "msg=exported"))
	}
	t.Logf("requests acknowledged before the first kill: %d, in all: %d", exportedAtKill, strings.Count(string(b), "msg=exported"))
}

// compareJaeger reads tr's trace from Jaeger and compares spans, parents and
// service names. dups counts spans Jaeger shows twice; copies the identical
// copies its raw view holds beyond one per span (requests sent again after
// a kill, with the same ids and contents).
func compareJaeger(j *jaeger.Server, tr *trace.Trace) (dups, copies int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := j.Trace(ctx, tr.ID, false)
	if err != nil {
		return 0, 0, err
	}
	type jspan struct {
		parent  pcommon.SpanID
		service string
		n       int
	}
	spans := map[pcommon.SpanID]*jspan{}
	each(got, func(svc string, s ptrace.Span) {
		if js := spans[s.SpanID()]; js != nil {
			js.n++
			dups++
			return
		}
		spans[s.SpanID()] = &jspan{parent: s.ParentSpanID(), service: svc, n: 1}
	})
	if raw, err := j.Trace(ctx, tr.ID, true); err == nil {
		copies = raw.SpanCount() - got.SpanCount()
	}
	if len(spans) != len(tr.Spans) {
		return dups, copies, fmt.Errorf("Jaeger has %d spans of trace %s, Zerotrace %d", len(spans), tr.ID, len(tr.Spans))
	}
	for i := range tr.Spans {
		s := &tr.Spans[i]
		js := spans[otlp.SpanIDOf(s.SpanID)]
		if js == nil {
			return dups, copies, fmt.Errorf("span %s not in Jaeger", span.FormatSpanID(s.SpanID))
		}
		wantParent := pcommon.NewSpanIDEmpty()
		if p := tr.Parents[i]; p >= 0 {
			wantParent = otlp.SpanIDOf(tr.Spans[p].SpanID)
		}
		if js.parent != wantParent || js.service != s.ServiceName() {
			return dups, copies, fmt.Errorf("span %s: parent %s service %q in Jaeger, want %s %q", span.FormatSpanID(s.SpanID),
				js.parent, js.service, wantParent, s.ServiceName())
		}
	}
	return dups, copies, nil
}

func each(td ptrace.Traces, fn func(service string, s ptrace.Span)) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for k := 0; k < rs.ScopeSpans().Len(); k++ {
			ss := rs.ScopeSpans().At(k).Spans()
			for n := 0; n < ss.Len(); n++ {
				fn(svc.Str(), ss.At(n))
			}
		}
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// exporterProc is `zerotrace export` as its own process, killed with
// SIGKILL and started again on the same checkpoint.
type exporterProc struct {
	bin, log string
	args     []string
	mu       sync.Mutex
	cmd      *exec.Cmd
	kills    []time.Time
}

func (e *exporterProc) start(t *testing.T) {
	if err := e.launch(); err != nil {
		t.Fatal(err)
	}
}

func (e *exporterProc) launch() error {
	f, err := os.OpenFile(e.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(e.bin, e.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	e.mu.Lock()
	e.cmd = cmd
	e.mu.Unlock()
	return nil
}

// restart kills the exporter with SIGKILL and starts it again.
func (e *exporterProc) restart() error {
	e.kill()
	e.kills = append(e.kills, time.Now())
	return e.launch()
}

func (e *exporterProc) kill() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd != nil {
		e.cmd.Process.Signal(syscall.SIGKILL)
		e.cmd.Wait()
		e.cmd = nil
	}
}

// proxy forwards TCP to a target; down refuses connections and cuts the
// open ones (the backend unreachable), up serves again on the same port.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
	downAt, upAt time.Time
	wg           sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[u] = true, true
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.downAt = time.Now()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) up() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		panic(errors.New("proxy: cannot listen again on " + p.addr + ": " + err.Error()))
	}
	p.upAt = time.Now()
	p.serve(ln)
}
