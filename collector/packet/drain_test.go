//go:build linux

package packet

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// drainBed is a client namespace and a server namespace joined by a veth,
// the capture on the client's end (eth0 in the client namespace) and an
// HTTP/1.1 server (keep-alive, in this process) in the server namespace
// that records every path it served: the ground truth the capture cannot
// see.
//
//	client 10.209.N.2 eth0 ══ eth0 10.209.N.3 server
type drainBed struct {
	t        *testing.T
	cns, sip string
	mu       sync.Mutex
	spans    []span.Span
	served   map[string]int
	c        *Capture
}

var drainSeq atomic.Int32

func newDrainBed(t *testing.T, fanout int) *drainBed {
	t.Helper()
	testenv.RequireRoot(t) // network namespaces and AF_PACKET sockets
	testenv.RequireBinaries(t, "curl")
	n := drainSeq.Add(1)
	id := fmt.Sprintf("zt-dr-%d-%d", os.Getpid(), n)
	cns, sns := id+"-c", id+"-s"
	b := &drainBed{t: t, cns: cns, sip: fmt.Sprintf("10.209.%d.3", n), served: map[string]int{}}
	t.Cleanup(func() {
		for _, ns := range []string{cns, sns} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{cns, sns} {
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", cns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", sns)
	sh(t, "ip", "-n", cns, "addr", "add", fmt.Sprintf("10.209.%d.2/24", n), "dev", "eth0")
	sh(t, "ip", "-n", sns, "addr", "add", b.sip+"/24", "dev", "eth0")
	sh(t, "ip", "-n", cns, "link", "set", "eth0", "up")
	sh(t, "ip", "-n", sns, "link", "set", "eth0", "up")

	var ln net.Listener
	if err := inNetns("/run/netns/"+sns, func() (err error) {
		ln, err = net.Listen("tcp", b.sip+":8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.served[r.URL.Path]++
		b.mu.Unlock()
		fmt.Fprintf(w, "served %s\n", r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	var err error
	b.c, err = Start(Options{Node: "test", Fanout: fanout, Interfaces: []Interface{{Netns: "/run/netns/" + cns, Name: "eth0"}}},
		func(s *span.Span) { b.mu.Lock(); b.spans = append(b.spans, *s); b.mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.c.Close() })
	return b
}

// curl runs one curl process in the client namespace requesting paths on one
// keep-alive connection, and returns when it has exited.
func (b *drainBed) curl(paths ...string) {
	b.t.Helper()
	args := []string{"netns", "exec", b.cns, "curl", "-sSf", "--max-time", "5"}
	for _, p := range paths {
		args = append(args, "-o", "/dev/null", "http://"+b.sip+":8080"+p)
	}
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		b.t.Fatalf("curl %v: %v %s", paths, err, out)
	}
}

// check asserts that each path was served once (by the server's record) and
// has exactly one complete packet span among those emitted so far.
func (b *drainBed) check(what string, paths []string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	spans := map[string][]span.Span{}
	for _, s := range b.spans {
		spans[s.RequestResource] = append(spans[s.RequestResource], s)
	}
	for _, p := range paths {
		if b.served[p] != 1 {
			b.t.Fatalf("%s: the server served %s %d times, want once", what, p, b.served[p])
		}
		ss := spans[p]
		if len(ss) != 1 {
			b.t.Errorf("%s: %d spans of %s, want 1 (the server served it once)", what, len(ss), p)
			continue
		}
		s := ss[0]
		if s.RequestType != "GET" || s.ResponseCode != 200 || s.ReqTCPSeq == 0 || s.RespTCPSeq == 0 ||
			s.ResponseBytes == 0 || s.SignalSource != span.SourcePacket || s.CaptureNIC != "eth0" {
			b.t.Errorf("%s: incomplete span of %s: %s", what, p, dumpSpans(ss))
		}
	}
}

func markers(prefix string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("/%s-%02d", prefix, i))
	}
	return out
}

// TestFlushTakesWhatTheRingsHold: a client process makes 6 requests on one
// connection and exits; Flush, called as soon as it has exited, ends the
// connection with every exchange: one complete span per request the server
// served, although the last response's frames were still in the ring (in a
// block the kernel had not handed over yet) when Flush was called. 12
// rounds, each checked when its Flush returns, and all of them again after
// Close (no span of an earlier round arriving late). With one ring and with
// a fanout group of two.
//
// Main before 2026-12-07's drain (Flush closed only the flows the reader had
// read; tests slept before it) failed in 7 and 10 of the 12 rounds (one
// ring, two rings) idle, 9 and 7 under two busy loops.
func TestFlushTakesWhatTheRingsHold(t *testing.T) {
	for _, fanout := range []int{1, 2} {
		t.Run(fmt.Sprintf("fanout%d", fanout), func(t *testing.T) {
			b := newDrainBed(t, fanout)
			b.curl("/ready") // the server answers; its span, flushed, is left out below
			b.c.Flush()
			var all []string
			start := time.Now()
			for r := 0; r < 12; r++ {
				paths := markers(fmt.Sprintf("flush%d-r%02d", fanout, r), 6)
				b.curl(paths...)
				b.c.Flush()
				b.check(fmt.Sprintf("round %d", r), paths)
				all = append(all, paths...)
			}
			t.Logf("12 rounds of curl and Flush: %v", time.Since(start).Round(time.Millisecond))
			if err := b.c.Close(); err != nil {
				t.Fatal(err)
			}
			b.check("after Close", all)
		})
	}
}

// TestCloseTakesWhatTheRingsHold: Close called as soon as the client
// process has exited ends its connection with every exchange, the frames
// still in the rings included: one complete span per request served. 12
// rounds, each with a capture of its own.
//
// Weak against main before 2026-12-07's drain (Close stopped the readers,
// dropping what the rings held): its stopped reader finishes its current
// Poll, usually woken by the retire of the block with the last frames; it
// failed in 3 of 6 rounds with two rings once, in none of 24 another time.
func TestCloseTakesWhatTheRingsHold(t *testing.T) {
	for _, fanout := range []int{1, 2} {
		t.Run(fmt.Sprintf("fanout%d", fanout), func(t *testing.T) {
			b := newDrainBed(t, fanout)
			b.curl("/ready")
			for r := 0; r < 12; r++ {
				if r > 0 {
					var err error
					b.c, err = Start(Options{Node: "test", Fanout: fanout, Interfaces: []Interface{{Netns: "/run/netns/" + b.cns, Name: "eth0"}}},
						func(s *span.Span) { b.mu.Lock(); b.spans = append(b.spans, *s); b.mu.Unlock() })
					if err != nil {
						t.Fatal(err)
					}
				}
				paths := markers(fmt.Sprintf("close%d-r%02d", fanout, r), 6)
				b.curl(paths...)
				if err := b.c.Close(); err != nil {
					t.Fatal(err)
				}
				b.check(fmt.Sprintf("round %d", r), paths)
			}
		})
	}
}
