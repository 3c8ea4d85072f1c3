//go:build linux

// Package seaweedtest starts a SeaweedFS server for a test (package
// seaweedfs runs it): the server stops at the test's cleanup, a missing
// binary fails the test unless ZEROTRACE_ALLOW_SKIP is set. It is apart from
// package seaweedfs so that `zerotrace bench bucket`, which starts the same
// server, links no test package.
package seaweedtest

import (
	"context"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/seaweedfs"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/objstore"
)

// Credentials of the server's one identity.
const (
	AccessKey = seaweedfs.AccessKey
	SecretKey = seaweedfs.SecretKey
)

// Server is a running weed server of one test.
type Server struct{ *seaweedfs.Server }

// Start runs a server for the test and stops it at cleanup. A missing
// binary fails the test (skips only with ZEROTRACE_ALLOW_SKIP).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := seaweedfs.Binary()
	if err != nil {
		testenv.Skip(t, "%v", err)
	}
	s, err := seaweedfs.Launch(bin, t.TempDir())
	if s != nil {
		t.Cleanup(s.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Server{s}
}

// Client returns a path-style client of bucket with the server's identity;
// the bucket is created.
func (s *Server) Client(t testing.TB, bucket string) *objstore.Client {
	t.Helper()
	c, err := objstore.New(s.Config(bucket))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.CreateBucket(ctx); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
	return c
}
