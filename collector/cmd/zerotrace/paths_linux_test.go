//go:build linux

package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// nobody is the unprivileged user the commands also run as: a user of the
// data group reads the store, anyone else is refused.
const nobody = 65534

// asMain makes the test binary the zerotrace command when it is started
// by run (TestMain).
const asMain = "ZEROTRACE_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Exit(dispatch(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// cmdRunner runs the test binary as the zerotrace command, as root or as
// nobody, from a directory nobody may enter.
type cmdRunner struct {
	t   *testing.T
	bin string
	env []string
}

func newRunner(t *testing.T, base string) *cmdRunner {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "zerotrace")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	return &cmdRunner{t: t, bin: bin, env: []string{asMain + "=1", "HOME=/nonexistent", "TMPDIR=/tmp", "PATH=/usr/bin:/bin"}}
}

func (c *cmdRunner) run(user int, extraEnv []string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = "/"
	cmd.Env = append(append([]string(nil), c.env...), extraEnv...)
	if user != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(user), Gid: uint32(user), Groups: []uint32{}}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			c.t.Fatal(err)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		c.t.Fatalf("%v: still running after a minute\nstderr:\n%s", args, errb.String())
	}
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// writeStore writes three Bookinfo traces into dir, readable by group gid.
func writeStore(t *testing.T, dir string, gid string) []spangen.Trace {
	t.Helper()
	traces := spangen.New(spangen.Config{Seed: 7, Start: time.Now().Add(-time.Minute)}).Next(3)
	ws := map[string]*store.Writer{}
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if ws[s.Node] == nil {
				w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: s.Node, Group: gid, NoBackground: true})
				if err != nil {
					t.Fatal(err)
				}
				ws[s.Node] = w
			}
			if err := ws[s.Node].Write(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range ws {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return traces
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(dst, fi.Mode().Perm()|0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCommandsRefuseBadDataDirs runs every command that reads data
// directories (search, trace, store stats|dump|verify, upload, export)
// against a missing path, a file, /etc, directories nobody may
// read (run as nobody), and a damaged MANIFEST.json: each exits 1 with a
// message naming the path and never answers "no calls match" or "trace
// not found". On a real store (as root, and as nobody through the data
// group) the same commands answer as before.
func TestCommandsRefuseBadDataDirs(t *testing.T) {
	testenv.RequireRoot(t)
	base, err := os.MkdirTemp("", "zerotrace-paths-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	c := newRunner(t, base)

	good := filepath.Join(base, "good")
	traces := writeStore(t, good, "65534")
	os.Chmod(good, 0o750)
	os.Chown(good, -1, nobody)
	seed := span.FormatSpanID(traces[1].Spans[5].SpanID)

	file := filepath.Join(base, "a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	// A directory nobody may not read at all, and a readable one whose
	// node directories nobody may not enter.
	private := filepath.Join(base, "private")
	copyTree(t, good, private)
	os.Chmod(private, 0o700)
	closedNodes := filepath.Join(base, "closed-nodes")
	copyTree(t, good, closedNodes)
	os.Chmod(closedNodes, 0o755)
	for _, n := range []string{"node1", "node2"} {
		os.Chown(filepath.Join(closedNodes, n), 0, 0)
		os.Chmod(filepath.Join(closedNodes, n), 0o700)
	}
	// node1's manifest cut short; node2 intact.
	damaged := filepath.Join(base, "damaged")
	copyTree(t, good, damaged)
	manifest := filepath.Join(damaged, "node1", store.ManifestName)
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(manifest, b[:len(b)/2], 0o644)

	bucketEnv := []string{"AWS_ACCESS_KEY_ID=k", "AWS_SECRET_ACCESS_KEY=s"}
	commands := []struct {
		name string
		args func(dir string) []string
	}{
		{"search", func(d string) []string { return []string{"search", "--data-dir", d, "--since", "1h"} }},
		{"trace", func(d string) []string { return []string{"trace", seed, "--data-dir", d} }},
		{"store stats", func(d string) []string { return []string{"store", "stats", d} }},
		{"store dump", func(d string) []string { return []string{"store", "dump", "--limit", "3", d} }},
		{"store verify", func(d string) []string { return []string{"store", "verify", d} }},
		{"upload", func(d string) []string {
			return []string{"upload", "--data-dir", d, "--node", "node1", "--object-store", "s3://zerotrace-none", "--object-store-endpoint", "http://127.0.0.1:1"}
		}},
		{"export", func(d string) []string {
			return []string{"export", "--data-dir", d, "--endpoint", "127.0.0.1:1", "--insecure", "--checkpoint", filepath.Join(base, "checkpoint")}
		}},
	}
	cases := []struct {
		name, dir, want string // want: in the message besides the path
		user            int
		names           string // the path the message names (default dir)
	}{
		{"missing", filepath.Join(base, "missing"), "no such file or directory", 0, ""},
		{"file", file, "not a directory", 0, ""},
		{"etc", "/etc", "holds no Zerotrace data", 0, ""},
		{"unreadable", private, "permission denied", nobody, ""},
		{"unreadable nodes", closedNodes, "permission denied", nobody, ""},
		{"damaged manifest", damaged, "parsing manifest", 0, manifest},
	}
	for _, cmd := range commands {
		for _, cs := range cases {
			t.Run(cmd.name+"/"+cs.name, func(t *testing.T) {
				r := c.run(cs.user, bucketEnv, cmd.args(cs.dir)...)
				names := cs.dir
				if cs.names != "" {
					names = cs.names
				}
				if r.code != 1 || !strings.Contains(r.stderr, names) || !strings.Contains(r.stderr, cs.want) {
					t.Errorf("exit %d, want 1 and a message naming %s (%q); stderr:\n%s", r.code, names, cs.want, r.stderr)
				}
				t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
				for _, no := range []string{"no calls match", "trace not found"} {
					if strings.Contains(r.stderr, no) {
						t.Errorf("%q without reading the store:\n%s", no, r.stderr)
					}
				}
			})
		}
	}

	// The real store: what each command answers, as root and as nobody.
	for _, user := range []int{0, nobody} {
		for _, cmd := range commands[:5] {
			r := c.run(user, nil, cmd.args(good)...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("uid %d %s on the store: exit %d, stderr:\n%s", user, cmd.name, r.code, r.stderr)
			}
			want := map[string]string{"search": " s-p ", "trace": "38 spans (24 eBPF, 14 packet), 1 root(s)",
				"store stats": "total: 2 nodes, 2 shards, 114 spans", "store dump": " span=", "store verify": "2 shards, 114 spans: every file matches"}[cmd.name]
			if !strings.Contains(r.stdout, want) {
				t.Errorf("uid %d %s: want %q in:\n%s", user, cmd.name, want, r.stdout)
			}
		}
		// search: six rows of the ratings service, one per tap of three requests.
		r := c.run(user, nil, "search", "--data-dir", good, "--since", "1h", "--service", "ratings", "--namespace", "bookinfo")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 6 {
			t.Errorf("uid %d search: exit %d:\n%s%s", user, r.code, r.stdout, r.stderr)
		}
	}
	// Usage errors exit 2, not 1 (README, "The zerotrace command").
	for _, args := range [][]string{{"search", "--bogus"}, {"trace"}, {"store", "stats"}, {"store", "dump", "--bogus", good},
		{"store", "verify"}, {"upload", "--bogus"}, {"doctor", "--bogus"}, {"no-such-command"}} {
		if r := c.run(0, nil, args...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: exit %d, want 2 and a usage message; stderr %q", args, r.code, r.stderr)
		}
	}
	// An empty data directory is a store with no spans yet: read, and
	// nothing matches.
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o755)
	if r := c.run(0, nil, "search", "--data-dir", empty); r.code != 0 || !strings.Contains(r.stderr, "no calls match in the last 15m0s (the store: 0 nodes, 0 shards, 0 spans)") {
		t.Errorf("empty store: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := c.run(0, nil, "trace", "0123456789abcdef0123456789abcdef", "--data-dir", good); r.code != 1 ||
		!strings.Contains(r.stderr, "trace not found: 0123456789abcdef0123456789abcdef (the store: 2 nodes, 2 shards, 114 spans, the newest ") {
		t.Errorf("unknown trace: exit %d, stderr %q", r.code, r.stderr)
	}
}
