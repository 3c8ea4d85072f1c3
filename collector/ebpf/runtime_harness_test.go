//go:build linux

package ebpf

// Netns test harness for the runtime capture tests: two namespaces
// (client, server) joined by a veth pair in 10.201.0.0/16, real servers and
// clients from Debian started inside them with `ip netns exec`, readiness by
// a "READY" line (or a curl probe for nginx), cleanup always.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// topo is one client namespace and one server namespace joined by a veth pair.
type topo struct {
	ClientNS, ServerNS string
	ClientIP, ServerIP string
}

var topoSeq atomic.Uint32

// requireRoot skips unless the test runs as root with `ip` available.
func requireRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t) // network namespaces
	testenv.RequireBinaries(t, "ip")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newTopo creates zt-ebpf-<pid>-<n>-{c,s} with 10.201.<x>.1 (client) and
// .2 (server), loopback up in both, and removes them in t.Cleanup.
func newTopo(t *testing.T) *topo {
	t.Helper()
	requireRoot(t)
	n := topoSeq.Add(1)
	pid := os.Getpid()
	base := fmt.Sprintf("zt-ebpf-%d-%d", pid, n)
	tp := &topo{ClientNS: base + "-c", ServerNS: base + "-s"}
	sub := (pid*7 + int(n)) % 250
	tp.ClientIP = fmt.Sprintf("10.201.%d.1", sub)
	tp.ServerIP = fmt.Sprintf("10.201.%d.2", sub)
	vc := fmt.Sprintf("zte%dc%d", pid%100000, n)
	vs := fmt.Sprintf("zte%ds%d", pid%100000, n)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", tp.ClientNS).Run()
		exec.Command("ip", "netns", "del", tp.ServerNS).Run()
		exec.Command("ip", "link", "del", vc).Run()
	})
	run(t, "ip", "netns", "add", tp.ClientNS)
	run(t, "ip", "netns", "add", tp.ServerNS)
	run(t, "ip", "link", "add", vc, "type", "veth", "peer", "name", vs)
	run(t, "ip", "link", "set", vc, "netns", tp.ClientNS)
	run(t, "ip", "link", "set", vs, "netns", tp.ServerNS)
	for _, c := range []struct{ ns, dev, ip string }{{tp.ClientNS, vc, tp.ClientIP}, {tp.ServerNS, vs, tp.ServerIP}} {
		run(t, "ip", "-n", c.ns, "addr", "add", c.ip+"/24", "dev", c.dev)
		run(t, "ip", "-n", c.ns, "link", "set", c.dev, "up")
		run(t, "ip", "-n", c.ns, "link", "set", "lo", "up")
	}
	return tp
}

// runtimeDir is the absolute path of testdata/runtimes.
func runtimeDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("testdata/runtimes")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runtime describes how to start one runtime's server and client.
type runtime struct {
	Name string
	// Bins must all be on PATH, else the runtime is skipped.
	Bins []string
	// Server returns the argv of a server on host:port, two-tier when down != "".
	// Empty when the runtime has no server of that kind.
	Server func(t *testing.T, host string, port int, down string) []string
	// Client returns the argv of a client fetching urls in order (keep-alive
	// where the client library does it).
	Client func(t *testing.T, urls []string) []string
	// TwoTierSameThread: the two-tier server calls downstream on the thread
	// that read the request (thread-per-request), so syscall trace ids link.
	TwoTierSameThread bool
	// Chunked: the server can send a chunked response.
	Chunked bool
}

var (
	javaOnce sync.Once
	javaDir  string
	javaErr  error
)

// javaClasses compiles Server.java and Client.java once per test binary.
func javaClasses(t *testing.T) string {
	t.Helper()
	javaOnce.Do(func() {
		javaDir, javaErr = os.MkdirTemp("", "zt-ebpf-java-")
		if javaErr != nil {
			return
		}
		rd := runtimeDir(t)
		out, err := exec.Command("javac", "-d", javaDir, filepath.Join(rd, "Server.java"), filepath.Join(rd, "Client.java")).CombinedOutput()
		if err != nil {
			javaErr = fmt.Errorf("javac: %v\n%s", err, out)
		}
	})
	if javaErr != nil {
		t.Fatal(javaErr)
	}
	return javaDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if javaDir != "" {
		os.RemoveAll(javaDir)
	}
	os.Exit(code)
}

func withDown(argv []string, down string) []string {
	if down != "" {
		return append(argv, down)
	}
	return argv
}

var runtimes = []runtime{
	{
		Name: "python", Bins: []string{sysPython, "curl"}, TwoTierSameThread: true, Chunked: true,
		Server: func(t *testing.T, h string, p int, d string) []string {
			return withDown([]string{sysPython, "-u", filepath.Join(runtimeDir(t), "server.py"), h, fmt.Sprint(p)}, d)
		},
		Client: func(t *testing.T, urls []string) []string {
			return append([]string{sysPython, filepath.Join(runtimeDir(t), "client.py")}, urls...)
		},
	},
	{
		Name: "node", Bins: []string{"node"}, Chunked: true,
		Server: func(t *testing.T, h string, p int, d string) []string {
			return withDown([]string{"node", filepath.Join(runtimeDir(t), "server.js"), h, fmt.Sprint(p)}, d)
		},
		Client: func(t *testing.T, urls []string) []string {
			return append([]string{"node", filepath.Join(runtimeDir(t), "client.js")}, urls...)
		},
	},
	{
		Name: "java", Bins: []string{"java", "javac"}, TwoTierSameThread: true, Chunked: true,
		Server: func(t *testing.T, h string, p int, d string) []string {
			return withDown([]string{"java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", javaClasses(t), "Server", h, fmt.Sprint(p)}, d)
		},
		Client: func(t *testing.T, urls []string) []string {
			return append([]string{"java", "-XX:TieredStopAtLevel=1", "-cp", javaClasses(t), "Client"}, urls...)
		},
	},
	{
		Name: "ruby", Bins: []string{"ruby"}, TwoTierSameThread: true, Chunked: true,
		Server: func(t *testing.T, h string, p int, d string) []string {
			return withDown([]string{"ruby", filepath.Join(runtimeDir(t), "server.rb"), h, fmt.Sprint(p)}, d)
		},
		Client: func(t *testing.T, urls []string) []string {
			return append([]string{"ruby", filepath.Join(runtimeDir(t), "client.rb")}, urls...)
		},
	},
	{
		Name: "nginx", Bins: []string{"nginx", "curl"},
		Server: func(t *testing.T, h string, p int, d string) []string {
			if d != "" {
				return nil // nginx is event-driven: no same-thread two-tier
			}
			return nginxArgv(t, fmt.Sprintf("%s:%d", h, p))
		},
		// nginx has no client of its own: curl (one connection for all URLs).
		Client: func(t *testing.T, urls []string) []string { return curlClient(urls) },
	},
}

// curlClient is the curl client used against every server.
func curlClient(urls []string) []string {
	argv := []string{"curl", "-sS", "--fail", "--max-time", "20", "-w", "%{http_code} %{size_download} %{url_effective}\n"}
	for _, u := range urls {
		argv = append(argv, "-o", "/dev/null", u)
	}
	return argv
}

// bigBody is the size of the "larger than the capture" response body.
const bigBody = 64 << 10

// nginxArgv writes a config under a temp prefix and returns nginx's argv.
func nginxArgv(t *testing.T, listen string) []string {
	t.Helper()
	prefix := t.TempDir()
	root := filepath.Join(prefix, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "big"), []byte(strings.Repeat("x", bigBody)), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(runtimeDir(t), "nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("@PREFIX@", prefix, "@LISTEN@", listen, "@ROOT@", root).Replace(string(tmpl))
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"nginx", "-p", prefix, "-c", cf}
}

// haveBins skips the test unless all bins are on PATH.
func haveBins(t *testing.T, bins ...string) {
	t.Helper()
	testenv.RequireBinaries(t, bins...)
}

var portSeq atomic.Uint32

// nextPort returns a port unique within this test binary; namespaces are
// fresh, so no other process can hold it.
func nextPort() int { return 20000 + int(portSeq.Add(1)) }

// startServer starts argv inside ns and waits until it answers on host:port
// (READY line on stdout, then a curl probe from ns). It is killed in t.Cleanup.
func startServer(t *testing.T, ns, host string, port int, argv []string) *exec.Cmd {
	t.Helper()
	cmd, stdout, stderr := serverCmd(t, ns, argv)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	watchServer(t, cmd, stdout, stderr, ns, fmt.Sprintf("http://%s:%d/ready", host, port), argv)
	return cmd
}

// serverCmd is the command that runs argv inside ns, its stdout and its
// stderr's collector, not started.
func serverCmd(t *testing.T, ns string, argv []string) (*exec.Cmd, io.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	stderr := &strings.Builder{}
	cmd.Stderr = &syncWriter{w: stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

// watchServer waits until the started server cmd answers url, drains its
// stdout and kills it in t.Cleanup.
func watchServer(t *testing.T, cmd *exec.Cmd, stdout io.Reader, stderr *strings.Builder, ns, url string, argv []string) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
		}
		cmd.Wait()
		close(done)
	}()
	waitServing(t, ns, url, argv, done, stderr)
}

// waitServing waits until url answers a curl from ns (-k: any certificate),
// failing when the server (done) exits first or after 30 s.
func waitServing(t *testing.T, ns, url string, argv []string, done chan struct{}, stderr *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sk", "-o", "/dev/null", "--max-time", "2", url).CombinedOutput()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("server %v exited before ready: %s", argv, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %v not ready after 30s: %v %s; stderr: %s", argv, err, out, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// clientResult is one line "STATUS LEN URL" printed by a client.
type clientResult struct {
	Status int
	Len    int
	What   string
}

// runClient runs argv inside ns (bounded to 60 s) and parses its output lines.
func runClient(t *testing.T, ns string, argv []string) []clientResult {
	t.Helper()
	res, err := runClientE(ns, argv)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runClientE is runClient for goroutines other than the test's.
func runClientE(ns string, argv []string) ([]clientResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("client %v: %v\nstdout: %s\nstderr: %s", argv, err, out, stderr.String())
	}
	var res []clientResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r clientResult
		if _, err := fmt.Sscanf(line, "%d %d %s", &r.Status, &r.Len, &r.What); err != nil {
			return nil, fmt.Errorf("client %v: bad output line %q: %v", argv, line, err)
		}
		res = append(res, r)
	}
	return res, nil
}
