//go:build linux

package proc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/collector/cgroup"
	"github.com/zerotrace/zerotrace/internal/annotated"
	"github.com/zerotrace/zerotrace/pkg/redact"
)

// TestCmdlineRedacted: the command line a span carries has its
// credentials replaced, argument by argument (a header with spaces stays
// one argument), or word by word for a process that rewrote its title;
// a configured redactor is used.
func TestCmdlineRedacted(t *testing.T) {
	root := t.TempDir()
	for pid, cmdline := range map[string]string{
		"1": "curl\x00-s\x00-H\x00Authorization: Bearer SECRET1\x00http://u:SECRET2@h/p?token=SECRET3&page=2\x00",
		"2": "redis-server *:6379 --requirepass SECRET4",
		"3": "python3\x00app.py\x00--port\x009080\x00",
	} {
		os.MkdirAll(filepath.Join(root, pid), 0o755)
		os.WriteFile(filepath.Join(root, pid, "cmdline"), []byte(cmdline), 0o644)
	}
	c := &Cache{Root: root}
	for pid, want := range map[uint32]string{
		1: "curl -s -H Authorization: REDACTED http://REDACTED:REDACTED@h/p?token=REDACTED&page=2",
		2: "redis-server *:6379 --requirepass SECRET4", // requirepass is one word, no key: add it to redact.query_keys
		3: "python3 app.py --port 9080",
	} {
		if got := c.Lookup(pid, pid, "comm").Cmdline; got != want {
			t.Errorf("pid %d: %q, want %q", pid, got, want)
		}
	}
	r, err := redact.New(redact.Keys, []string{"requirepass"})
	if err != nil {
		t.Fatal(err)
	}
	c = &Cache{Root: root, Redact: r}
	if got := c.Lookup(2, 2, "comm").Cmdline; got != "redis-server *:6379 --requirepass REDACTED" {
		t.Errorf("configured keys: %q", got)
	}
}

// TestLookupAfterExec: /proc is read after the event. When the event's
// thread has another name by then, its process exec'd another program (or
// the pid is another process's): the info is the event's name alone, and
// it is not kept; a later event of the new program reads /proc again.
// Without a thread's comm to compare (it exited), /proc is taken as it is.
func TestLookupAfterExec(t *testing.T) {
	c := &Cache{Root: curlProc(t, "http://h/post")}
	if got := c.Lookup(7, 7, "bash"); got.Name != "bash" || got.Cmdline != "" {
		t.Errorf("an event of bash looked up after the exec: %+v, want bash's name alone", got)
	}
	if got := c.Lookup(7, 7, "curl"); got.Name != "curl" || got.Cmdline != "curl http://h/post" {
		t.Errorf("an event of curl: %+v", got)
	}
	if got := c.Lookup(7, 7, "bash"); got.Name != "curl" {
		t.Errorf("cached info not used: %+v", got)
	}
	c.Forget(7)
	if got := c.Lookup(7, 9, "worker-9"); got.Name != "curl" {
		t.Errorf("a thread that exited (no comm to compare): %+v, want /proc's", got)
	}
}

// TestLookupKeptAtExec: what the process's exec told (Keep) is used only
// when /proc cannot tell the event's program any more: the process is gone
// (a short-lived client), or its thread has another program's name (it
// exec'd again). A process still there is read again: it may have moved to
// another cgroup since. The exec's arguments are redacted and cut as a
// command line from /proc is. Forget drops what was kept.
func TestLookupKeptAtExec(t *testing.T) {
	c := &Cache{Root: curlProc(t, "http://h/now")}

	c.Keep(7, Exec{Comm: "curl", Args: []byte("curl\x00http://h/kept\x00")})
	if got := c.Lookup(7, 7, "curl"); got.Cmdline != "curl http://h/now" {
		t.Errorf("a process still there: %+v, want /proc's command line", got)
	}
	c.Forget(7)
	c.Keep(7, Exec{Comm: "bash", Args: []byte("bash\x00-c\x00x\x00")})
	if got := c.Lookup(7, 7, "bash"); got.Name != "bash" || got.Cmdline != "bash -c x" {
		t.Errorf("an event of bash, which exec'd curl since: %+v, want what bash's exec told", got)
	}
	if got := c.Lookup(7, 7, "curl"); got.Cmdline != "bash -c x" {
		t.Errorf("the pid's cached info not used: %+v", got)
	}

	args := []byte("curl\x00-u\x00admin:SECRET1\x00http://h/kept?token=SECRET2\x00")
	c.Keep(8, Exec{Comm: "curl", Args: args})
	args[0] = 'X' // Keep copied them: the ring's record is reused
	if got := c.Lookup(8, 8, "curl"); got.Name != "curl" || got.Cmdline != "curl -u admin:REDACTED http://h/kept?token=REDACTED" {
		t.Errorf("a process gone before its first lookup: %+v, want what its exec told, redacted", got)
	}
	c.Forget(8)
	if got := c.Lookup(8, 8, "curl"); got.Name != "curl" || got.Cmdline != "" {
		t.Errorf("a process gone, nothing kept: %+v, want its thread's name alone", got)
	}

	long := "python3\x00" + strings.Repeat("a", 600)
	c.Keep(9, Exec{Comm: "python3", Args: []byte(long[:512])})
	if got := c.Lookup(9, 9, "python3"); len(got.Cmdline) != 256 || !strings.HasPrefix(got.Cmdline, "python3 aaa") {
		t.Errorf("long arguments: %d bytes %.20q, want 256", len(got.Cmdline), got.Cmdline)
	}
	// A cgroup that cannot be found leaves the rest.
	c.Cgroups = &cgroup.ByID{Mount: t.TempDir()}
	c.Keep(10, Exec{Comm: "curl", Args: []byte("curl\x00http://h/c\x00"), CgroupID: 12345})
	if got := c.Lookup(10, 10, "curl"); got.Cmdline != "curl http://h/c" || got.ContainerID != "" || !errors.Is(got.CgroupErr, cgroup.ErrNoCgroup2) {
		t.Errorf("an exec's cgroup not found: %+v", got)
	}
}

// TestExecOf: an exec's data, as note_exec (bpf/socket/procs.h) writes
// it: the program file's name, a NUL, the arguments.
func TestExecOf(t *testing.T) {
	for _, tc := range []struct {
		name       string
		data       []byte
		file, args string
	}{
		{"name and arguments", annotated.Hex(`
			707974686f6e332e313100 // "python3.11\0": the file, links resolved
			707974686f6e3300       // "python3\0": argv[0] as started
			2d6300 7800            // "-c\0x\0"
		`), "python3.11", "python3\x00-c\x00x\x00"},
		{"no name read", annotated.Hex(`
			00                 // no name
			6375726c00 2d7300  // "curl\0-s\0"
		`), "", "curl\x00-s\x00"},
		{"arguments cut in the middle", annotated.Hex(`
			6375726c00     // "curl\0"
			6375726c00 6874 // "curl\0ht": cut at the record's end
		`), "curl", "curl\x00ht"},
		{"no arguments", annotated.Hex(`
			6375726c00 // "curl\0"
		`), "curl", ""},
		{"no NUL: nothing", annotated.Hex(`
			6375 // "cu"
		`), "", ""},
		{"empty", nil, "", ""},
	} {
		x := ExecOf("comm", tc.data, 7)
		if x.File != tc.file || string(x.Args) != tc.args || x.Comm != "comm" || x.CgroupID != 7 {
			t.Errorf("%s: %+v, want file %q arguments %q", tc.name, x, tc.file, tc.args)
		}
	}
	var c Cache
	if got := c.fromExec(ExecOf("python3", []byte("python3.11\x00python3\x00app.py\x00"), 0)); got.Name != "python3.11" || got.Cmdline != "python3 app.py" {
		t.Errorf("named by its file: %+v", got)
	}
	if got := c.fromExec(ExecOf("curl", []byte("\x00curl\x00"), 0)); got.Name != "curl" {
		t.Errorf("no file name: %+v, want the thread's", got)
	}
}

// FuzzExecOf: any exec data gives a name without a NUL and arguments that
// are the data's tail.
func FuzzExecOf(f *testing.F) {
	f.Add([]byte("python3.11\x00python3\x00-c\x00x\x00"))
	f.Add([]byte("\x00curl\x00"))
	f.Add([]byte("cu"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x := ExecOf("c", b, 1)
		if strings.IndexByte(x.File, 0) >= 0 || !bytes.HasSuffix(b, x.Args) || len(x.File)+len(x.Args) > len(b) {
			t.Fatalf("%q: %+v", b, x)
		}
	})
}

// curlProc is a /proc tree holding pid 7, a curl asked for url.
func curlProc(t *testing.T, url string) string {
	root := t.TempDir()
	dir := filepath.Join(root, "7")
	os.MkdirAll(filepath.Join(dir, "task", "7"), 0o755)
	os.Symlink("/usr/bin/curl", filepath.Join(dir, "exe"))
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte("curl\x00"+url+"\x00"), 0o644)
	os.WriteFile(filepath.Join(dir, "task", "7", "comm"), []byte("curl\n"), 0o644)
	return root
}

// BenchmarkFromExec: what a process gone before its first lookup costs:
// its exec's data split (ExecOf), its arguments redacted, its cgroup found
// by id (cached).
func BenchmarkFromExec(b *testing.B) {
	c := Cache{Cgroups: &cgroup.ByID{}}
	data := []byte("curl\x00curl\x00-s\x00-H\x00Authorization: Bearer X\x00http://reviews:9080/reviews/0\x00")
	if i := c.fromExec(ExecOf("curl", data, 1)); i.CgroupErr != nil || i.Name != "curl" {
		b.Fatal(i)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.fromExec(ExecOf("curl", data, 1))
	}
}

// FuzzCmdline: any bytes as a command line (an exec's arguments, a
// /proc/<pid>/cmdline) give at most 256 bytes and no NUL.
func FuzzCmdline(f *testing.F) {
	f.Add([]byte("curl\x00-u\x00admin:SECRET\x00http://h/p?token=X\x00"))
	f.Add([]byte("nginx: worker process"))
	f.Add([]byte("\x00\x00"))
	var c Cache
	f.Fuzz(func(t *testing.T, b []byte) {
		s := c.cmdline(string(b))
		if len(s) > 256 || strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("%q: %q", b, s)
		}
	})
}
