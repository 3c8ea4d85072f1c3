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

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/seaweedfs"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/spangen"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// uploadProc runs `zerotrace upload` as a child process.
func uploadProc(t *testing.T, bin string, srv *seaweedfs.Server, dir, secret string) (*exec.Cmd, *testenv.Log) {
	t.Helper()
	cmd := exec.Command(bin, "upload", "--data-dir", dir, "--node", "node1", "--metrics-addr", "",
		"--object-store", "s3://zerotrace/fault", "--object-store-endpoint", srv.Endpoint, "--object-store-path-style")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+seaweedfs.AccessKey, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
	log := &testenv.Log{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, log
}

// complete checks the bucket invariant: every shard the manifest lists has
// all its objects, with the listed sizes and sums. It returns the manifest.
func complete(t *testing.T, c *objstore.Client) *bucket.Manifest {
	t.Helper()
	ctx := context.Background()
	b, err := c.GetBytes(ctx, bucket.ManifestKey("fault/", "node1"), bucket.MaxManifestBytes)
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
			ob, err := c.GetBytes(ctx, bucket.ShardPrefix("fault/", "node1", s.Name)+f.Name, 1<<30)
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
// shard incomplete; the server stopped for 30 s loses nothing; wrong
// credentials are a clear log line and the process keeps running.
func TestUploadFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the zerotrace binary, runs SeaweedFS for over a minute")
	}
	srv := seaweedfs.Start(t)
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
		cmd, _ := uploadProc(t, bin, srv, dir, seaweedfs.SecretKey)
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		m := complete(t, client)
		t.Logf("kill -9 #%d: %d shards listed, all complete", i+1, len(m.Shards))
	}

	// The server stopped for 30 s during traffic.
	cmd, log := uploadProc(t, bin, srv, dir, seaweedfs.SecretKey)
	time.Sleep(2 * time.Second)
	srv.Stop()
	time.Sleep(30 * time.Second)
	if cmd.ProcessState != nil {
		t.Fatalf("uploader exited while the server was down:\n%s", log)
	}
	if !strings.Contains(log.String(), "unreachable") {
		t.Errorf("no unreachable error in the uploader log:\n%s", log)
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
		m := complete(t, client)
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
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d local shards still not in the bucket a minute after it came back:\n%s", missing, log)
		}
		time.Sleep(500 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("uploader exit: %v\n%s", err, log)
	}
	// Every span written is readable from the bucket alone.
	mirror, err := bucket.OpenMirror(bucket.MirrorOptions{Client: client, Prefix: "fault/", Dir: filepath.Join(t.TempDir(), "cache")})
	if err != nil {
		t.Fatal(err)
	}
	release, err := mirror.Prepare(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r, _ := store.OpenReader(mirror.Dir())
	defer r.Close()
	n := 0
	r.Dump(context.Background(), 0, 0, func(*span.Span) bool { n++; return true })
	if n != written {
		t.Fatalf("bucket holds %d spans, %d written", n, written)
	}
	t.Logf("%d spans written across kill -9s and a 30 s outage, %d in the bucket", written, n)

	// Wrong credentials: said clearly, no exit, no secret in the log.
	cmd, log = uploadProc(t, bin, srv, dir, "not-the-secret")
	time.Sleep(3 * time.Second)
	if cmd.ProcessState != nil || !strings.Contains(log.String(), "refused the credentials") || strings.Contains(log.String(), "not-the-secret") {
		t.Fatalf("wrong credentials:\n%s", log)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}
