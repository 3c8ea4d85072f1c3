//go:build linux

package bucket_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// uploadProc is `zerotrace upload` running as a child process.
type uploadProc struct {
	cmd    *exec.Cmd
	log    *testenv.Log
	exited chan struct{} // closed when the process has exited (Wait returned)
	err    error         // Wait's result, once exited
}

// startUpload runs `zerotrace upload` for dir into prefix of the bucket
// zerotrace, signing with accessKey and secret.
func startUpload(t *testing.T, bin string, srv *seaweedtest.Server, dir, prefix, accessKey, secret string) *uploadProc {
	t.Helper()
	cmd := exec.Command(bin, "upload", "--data-dir", dir, "--node", "node1", "--metrics-addr", "",
		"--object-store", "s3://zerotrace/"+prefix, "--object-store-endpoint", srv.Endpoint, "--object-store-path-style")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
	p := &uploadProc{cmd: cmd, log: &testenv.Log{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.exited })
	return p
}

// alive reports whether the process is still running. (Not signal 0: an
// exited child nobody has waited for is a zombie, which signal 0 finds.)
func (p *uploadProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop ends the process with SIGTERM and returns how it exited.
func (p *uploadProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	return p.err
}

// complete checks the bucket invariant under prefix: every shard the
// manifest lists has all its objects, with the listed sizes and sums. It
// returns the manifest.
func complete(t *testing.T, c *objstore.Client, prefix string) *bucket.Manifest {
	t.Helper()
	ctx := context.Background()
	b, err := c.GetBytes(ctx, bucket.ManifestKey(prefix, "node1"), bucket.MaxManifestBytes)
	if objstore.IsNotFound(err) {
		return &bucket.Manifest{}
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := bucket.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Shards {
		for _, f := range s.Files {
			ob, err := c.GetBytes(ctx, bucket.ShardPrefix(prefix, "node1", s.Name)+f.Name, 1<<30)
			if err != nil {
				t.Fatalf("listed shard %s: %v", s.Name, err)
			}
			sum := sha256.Sum256(ob)
			if int64(len(ob)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Fatalf("listed shard %s: object %s incomplete", s.Name, f.Name)
			}
		}
	}
	return m
}

// TestUploadFaults runs the uploader process against SeaweedFS while a
// writer seals shards: kill -9 at random moments never leaves a listed
// shard incomplete; the server stopped for 30 s loses nothing, the process
// keeps running through it and catches up when the server is back; refused
// credentials are a clear log line without the secret, and the process keeps
// running and uploads everything once the server accepts its key.
func TestUploadFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the zerotrace binary, runs SeaweedFS for over a minute")
	}
	srv := seaweedtest.Start(t)
	client := srv.Client(t, "zerotrace")
	bin := filepath.Join(t.TempDir(), "zerotrace")
	build := exec.Command("go", "build", "-o", bin, "./collector/cmd/zerotrace")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building zerotrace: %v\n%s", err, out)
	}
	dir := t.TempDir()
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: "node1", SealInterval: 500 * time.Millisecond,
		BatchInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	gen := spangen.New(spangen.Config{Seed: 9, Start: time.Now(), Interval: 20 * time.Millisecond})
	written := 0
	stopTraffic := make(chan struct{})
	trafficDone := make(chan struct{})
	go func() { // node1's share of 50 requests/s
		defer close(trafficDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTraffic:
				return
			case <-tick.C:
			}
			for _, s := range gen.Next(1)[0].Spans {
				if s.Node == "node1" {
					if err := w.Write(s); err != nil {
						t.Error(err)
						return
					}
					written++
				}
			}
		}
	}()

	// kill -9 at random moments.
	for i := 0; i < 4; i++ {
		p := startUpload(t, bin, srv, dir, "fault", seaweedtest.AccessKey, seaweedtest.SecretKey)
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		p.cmd.Process.Kill()
		<-p.exited
		m := complete(t, client, "fault/")
		t.Logf("kill -9 #%d: %d shards listed, all complete", i+1, len(m.Shards))
	}

	// The server stopped for 30 s during traffic.
	p := startUpload(t, bin, srv, dir, "fault", seaweedtest.AccessKey, seaweedtest.SecretKey)
	time.Sleep(2 * time.Second)
	srv.Stop()
	time.Sleep(30 * time.Second)
	if !p.alive() {
		t.Fatalf("uploader exited while the server was down (%v):\n%s", p.err, p.log)
	}
	if !strings.Contains(p.log.String(), "unreachable") {
		t.Errorf("no unreachable error in the uploader log:\n%s", p.log)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	close(stopTraffic)
	<-trafficDone
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Caught up: the bucket lists every local shard (within a minute: backoff ≤ 30 s).
	caughtUp(t, client, "fault/", dir, p)
	if err := p.stop(); err != nil {
		t.Fatalf("uploader exit: %v\n%s", err, p.log)
	}
	// Every span written is readable from the bucket alone.
	if n := bucketSpans(t, client, "fault/"); n != written {
		t.Fatalf("bucket holds %d spans, %d written", n, written)
	}
	t.Logf("%d spans written across kill -9s and a 30 s outage, all in the bucket", written)

	// Refused credentials: said clearly, no secret in the log, no exit; once
	// the server accepts the key (restarted with it), everything is uploaded.
	const rotated, rotatedSecret = "zerotrace-rotated", "rotated-secret-not-in-logs"
	p = startUpload(t, bin, srv, dir, "creds", rotated, rotatedSecret)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.log.String(), "refused the credentials") && p.alive() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // retries with backoff
	if !p.alive() || !strings.Contains(p.log.String(), "refused the credentials") {
		t.Fatalf("refused credentials: alive %v (%v):\n%s", p.alive(), p.err, p.log)
	}
	if len(complete(t, client, "creds/").Shards) != 0 {
		t.Fatal("shards uploaded with refused credentials")
	}
	srv.Stop()
	if err := srv.AddCredentials(rotated, rotatedSecret); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, client, "creds/", dir, p)
	if err := p.stop(); err != nil {
		t.Fatalf("uploader exit: %v\n%s", err, p.log)
	}
	if strings.Contains(p.log.String(), rotatedSecret) {
		t.Errorf("the secret is in the uploader log:\n%s", p.log)
	}
	if n := bucketSpans(t, client, "creds/"); n != written {
		t.Fatalf("bucket holds %d spans under creds/ once the key was accepted, %d written", n, written)
	}
}

// caughtUp waits until the bucket under prefix lists every shard of the
// local manifest (within a minute: backoff ≤ 30 s), failing if the uploader
// exits meanwhile.
func caughtUp(t *testing.T, client *objstore.Client, prefix, dir string, p *uploadProc) {
	t.Helper()
	local := func() map[string]bool {
		b, _ := os.ReadFile(filepath.Join(dir, "node1", store.ManifestName))
		lm, err := store.ParseManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, s := range lm.Shards {
			names[s.Name] = true
		}
		return names
	}
	deadline := time.Now().Add(time.Minute)
	for {
		m := complete(t, client, prefix)
		missing := 0
		listed := map[string]bool{}
		for _, s := range m.Shards {
			listed[s.Name] = true
		}
		for n := range local() {
			if !listed[n] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if !p.alive() {
			t.Fatalf("uploader exited (%v) with %d local shards not in the bucket:\n%s", p.err, missing, p.log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d local shards still not in the bucket under %s a minute after it came back:\n%s", missing, prefix, p.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// bucketSpans counts the spans readable from the bucket's prefix alone.
func bucketSpans(t *testing.T, client *objstore.Client, prefix string) int {
	t.Helper()
	mirror, err := bucket.OpenMirror(bucket.MirrorOptions{Client: client, Prefix: prefix, Dir: filepath.Join(t.TempDir(), "cache")})
	if err != nil {
		t.Fatal(err)
	}
	release, err := mirror.Prepare(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r, err := store.OpenReader(mirror.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	if err := r.Dump(context.Background(), 0, 0, func(*span.Span) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}
