//go:build linux

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
)

// TestCommandsRefuseBadBuckets runs the commands that read a bucket
// (search, trace, export) against SeaweedFS with a wrong secret key, a
// bucket that does not exist and a stopped server: each exits 1 with one
// message naming the bucket and what is wrong, never "no calls match" or
// "trace not found". The same commands on the empty bucket read it.
func TestCommandsRefuseBadBuckets(t *testing.T) {
	base := t.TempDir()
	c := newRunner(t, base)
	s3 := seaweedtest.Start(t)
	s3.Client(t, "zt-cli")
	keys := []string{"AWS_ACCESS_KEY_ID=" + seaweedtest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + seaweedtest.SecretKey}
	wrong := []string{"AWS_ACCESS_KEY_ID=" + seaweedtest.AccessKey, "AWS_SECRET_ACCESS_KEY=not-the-secret"}
	commands := []struct {
		name string
		args func(url string) []string
	}{
		{"search", func(u string) []string { return []string{"search", "--since", "1h", "--object-store", u} }},
		{"trace", func(u string) []string { return []string{"trace", "0123456789abcdef", "--object-store", u} }},
		{"export", func(u string) []string {
			return []string{"export", "--object-store", u, "--endpoint", "127.0.0.1:1", "--insecure", "--checkpoint", filepath.Join(base, "checkpoint")}
		}},
	}
	bucketArgs := func(args []string) []string {
		return append(args, "--object-store-endpoint", s3.Endpoint, "--object-store-path-style")
	}
	check := func(what string, env []string, url, want string) {
		t.Helper()
		for _, cmd := range commands {
			r := c.run(0, env, bucketArgs(cmd.args(url))...)
			t.Logf("%s %s: exit %d: %s", what, cmd.name, r.code, strings.TrimSpace(r.stderr))
			if r.code != 1 || !strings.Contains(r.stderr, "object store "+url+": "+want) {
				t.Errorf("%s %s: exit %d, want 1 and %q; stderr:\n%s", what, cmd.name, r.code, want, r.stderr)
			}
			for _, no := range []string{"no calls match", "trace not found"} {
				if strings.Contains(r.stderr, no) {
					t.Errorf("%s %s: %q without reading the bucket", what, cmd.name, no)
				}
			}
		}
	}
	check("wrong key", wrong, "s3://zt-cli/cluster-a", "the object store refused the credentials")
	check("missing bucket", keys, "s3://zt-no-such-bucket/cluster-a", "the bucket does not exist")

	// The empty bucket is read: nothing matches, no trace is found.
	r := c.run(0, keys, bucketArgs(commands[0].args("s3://zt-cli/cluster-a"))...)
	if r.code != 0 || !strings.Contains(r.stderr, "no calls match") {
		t.Errorf("empty bucket search: exit %d, stderr %q", r.code, r.stderr)
	}
	r = c.run(0, keys, bucketArgs(commands[1].args("s3://zt-cli/cluster-a"))...)
	if r.code != 1 || !strings.Contains(r.stderr, "trace not found") {
		t.Errorf("empty bucket trace: exit %d, stderr %q", r.code, r.stderr)
	}

	s3.Stop()
	check("stopped server", keys, "s3://zt-cli/cluster-a", "the object store is unreachable")
}
