//go:build linux

package proc

import (
	"os"
	"path/filepath"
	"testing"

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
		if got := c.Lookup(pid, "comm").Cmdline; got != want {
			t.Errorf("pid %d: %q, want %q", pid, got, want)
		}
	}
	r, err := redact.New(redact.Keys, []string{"requirepass"})
	if err != nil {
		t.Fatal(err)
	}
	c = &Cache{Root: root, Redact: r}
	if got := c.Lookup(2, "comm").Cmdline; got != "redis-server *:6379 --requirepass REDACTED" {
		t.Errorf("configured keys: %q", got)
	}
}
