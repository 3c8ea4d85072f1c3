//go:build linux

package objstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/pkg/objstore"
)

// TestAgainstSeaweedFS drives every operation against a real S3 server.
func TestAgainstSeaweedFS(t *testing.T) {
	s := seaweedtest.Start(t)
	c := s.Client(t, "objstore-test")
	ctx := context.Background()

	body := bytes.Repeat([]byte("zerotrace "), 100000) // 1 MB
	keys := []string{"p/a", "p/b c", "p/d/e$f", "p/g+h", "p/ü", "q/other"}
	for _, k := range keys {
		if err := c.PutBytes(ctx, k, append([]byte(k), body...)); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	for _, k := range keys {
		got, err := c.GetBytes(ctx, k, 2<<20)
		if err != nil || !bytes.Equal(got, append([]byte(k), body...)) {
			t.Fatalf("get %s: %v (%d bytes)", k, err, len(got))
		}
		n, err := c.Head(ctx, k)
		if err != nil || n != int64(len(k)+len(body)) {
			t.Fatalf("head %s: %d %v", k, n, err)
		}
	}
	// Pages of two keys: the continuation tokens are followed.
	var listed []string
	err := c.List(ctx, "p/", 2, func(o objstore.Object) error {
		listed = append(listed, o.Key)
		if o.Size != int64(len(o.Key)+len(body)) {
			return fmt.Errorf("%s: size %d", o.Key, o.Size)
		}
		return nil
	})
	if err != nil || fmt.Sprint(listed) != fmt.Sprint(keys[:5]) {
		t.Fatalf("list: %v %q", err, listed)
	}
	// A body that does not match its signed hash is refused.
	err = c.Put(ctx, "p/bad", bytes.NewReader([]byte("abc")), 3, objstore.EmptySHA256)
	if err == nil {
		t.Fatal("put with a wrong payload hash accepted")
	}
	if err := c.Delete(ctx, "p/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBytes(ctx, "p/a", 1<<20); !objstore.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := c.Delete(ctx, "p/a"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	rc, size, err := c.Get(ctx, "p/g+h")
	if err != nil || size != int64(len("p/g+h")+len(body)) {
		t.Fatalf("get stream: %v %d", err, size)
	}
	n, _ := io.Copy(io.Discard, rc)
	rc.Close()
	if n != size {
		t.Fatalf("streamed %d of %d bytes", n, size)
	}

	// Wrong credentials: an auth error naming the code, never the secret.
	cfg := s.Config("objstore-test")
	cfg.Credentials.SecretAccessKey = "wrong-secret-value"
	bad, _ := objstore.New(cfg)
	_, err = bad.GetBytes(ctx, "p/b c", 1<<20)
	if !objstore.IsAuth(err) || bytes.Contains([]byte(err.Error()), []byte("wrong-secret-value")) {
		t.Fatalf("wrong secret: %v", err)
	}
	t.Logf("wrong secret: %v", err)

	// TLS: trusted through the CA file, refused without it, accepted when
	// verification is skipped.
	tcfg := s.Config("objstore-test")
	tcfg.Endpoint = s.HTTPSEndpoint
	for _, tc := range []struct {
		name   string
		ca     string
		skip   bool
		wantOK bool
	}{{"CA file", s.CAFile, false, true}, {"system roots only", "", false, false}, {"skip verify", "", true, true}} {
		tcfg.CAFile, tcfg.InsecureSkipVerify = tc.ca, tc.skip
		tc2, err := objstore.New(tcfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tc2.Head(ctx, "p/b c")
		if (err == nil) != tc.wantOK || (err != nil && !strings.Contains(err.Error(), "certificate")) {
			t.Fatalf("TLS, %s: %v", tc.name, err)
		}
	}

	// Stopped server: a transport error, then back.
	s.Stop()
	if _, err := c.Head(ctx, "p/b c"); err == nil {
		t.Fatal("head on a stopped server succeeded")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Head(ctx, "p/b c"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
