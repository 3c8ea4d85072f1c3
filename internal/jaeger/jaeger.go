//go:build linux

// Package jaeger runs a real Jaeger v2 for tests: the jaeger binary that
// .ci/jaeger builds from its Go module (github.com/jaegertracing/jaeger
// v1.75.0, cmd/jaeger), on loopback ports, from a YAML configuration with
// in-memory storage, the OTLP receiver (gRPC and HTTP) and the query API.
// It is test support: the collector binary never links it.
package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// Version is the approved release .ci/jaeger builds.
const Version = "v1.75.0"

// Binary finds jaeger: $ZEROTRACE_JAEGER, else the
// /var/cache/zerotrace/jaeger-<Version> that .ci/jaeger built.
func Binary() (string, error) {
	if p := os.Getenv("ZEROTRACE_JAEGER"); p != "" {
		return p, nil
	}
	dir := os.Getenv("JAEGER_CACHE")
	if dir == "" {
		dir = "/var/cache/zerotrace"
	}
	p := filepath.Join(dir, "jaeger-"+Version)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", errors.New("no jaeger binary: run bash .ci/jaeger (or set ZEROTRACE_JAEGER)")
	}
	return p, nil
}

// Server is one running Jaeger.
type Server struct {
	OTLPGRPC string // 127.0.0.1:port of the OTLP gRPC receiver
	OTLPHTTP string // http://127.0.0.1:port of the OTLP HTTP receiver
	Query    string // http://127.0.0.1:port of the query API (/api/v3)
	Log      string // the server's output file

	cmd  *exec.Cmd
	done chan struct{}
}

// config: in-memory storage, OTLP in, query out, nothing else listening.
const config = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// Start runs Jaeger for the test and stops it at cleanup. A missing binary
// fails the test (skips only with ZEROTRACE_ALLOW_SKIP).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		testenv.Skip(t, "%v", err)
	}
	dir := t.TempDir()
	var s *Server
	for try := 0; try < 3; try++ { // a port picked free can be taken before jaeger binds it
		s, err = launch(bin, dir)
		if err == nil {
			break
		}
		if s != nil {
			s.Stop()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func launch(bin, dir string) (*Server, error) {
	p, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(config, p[0], p[1], p[2], p[3])), 0o644); err != nil {
		return nil, err
	}
	s := &Server{Query: fmt.Sprintf("http://127.0.0.1:%d", p[0]), OTLPGRPC: fmt.Sprintf("127.0.0.1:%d", p[2]),
		OTLPHTTP: fmt.Sprintf("http://127.0.0.1:%d", p[3]), Log: filepath.Join(dir, "jaeger.log"), done: make(chan struct{})}
	log, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	s.cmd = exec.Command(bin, "--config", cfg)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting jaeger: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.Log)
			return s, fmt.Errorf("jaeger exited: %s", tail(b))
		default:
		}
		if _, err := s.Services(context.Background()); err == nil {
			if c, err := net.DialTimeout("tcp", s.OTLPGRPC, time.Second); err == nil {
				c.Close()
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(s.Log)
	return s, fmt.Errorf("jaeger did not serve within 60 s: %s", tail(b))
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop kills Jaeger and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
}

func (s *Server) get(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Query+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// Services lists the services Jaeger has spans of.
func (s *Server) Services(ctx context.Context) ([]string, error) {
	b, code, err := s.get(ctx, "/api/v3/services")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v3/services: %d %s", code, tail(b))
	}
	var out struct {
		Services []string `json:"services"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	sort.Strings(out.Services)
	return out.Services, nil
}

// ErrNotFound: Jaeger has no trace of that id.
var ErrNotFound = errors.New("trace not found in jaeger")

// Trace reads one trace (32 hex digits) from the query API; raw skips
// Jaeger's adjusters (the deduplication of identical spans among them).
func (s *Server) Trace(ctx context.Context, id string, raw bool) (ptrace.Traces, error) {
	path := "/api/v3/traces/" + id
	if raw {
		path += "?raw_traces=true"
	}
	b, code, err := s.get(ctx, path)
	if err != nil {
		return ptrace.Traces{}, err
	}
	if code == http.StatusNotFound {
		return ptrace.Traces{}, ErrNotFound
	}
	if code != http.StatusOK {
		return ptrace.Traces{}, fmt.Errorf("GET %s: %d %s", path, code, tail(b))
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return ptrace.Traces{}, fmt.Errorf("GET %s: %w", path, err)
	}
	if len(env.Result) == 0 || strings.TrimSpace(string(env.Result)) == "null" {
		return ptrace.Traces{}, ErrNotFound
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(env.Result)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("GET %s: decoding: %w", path, err)
	}
	return td, nil
}
