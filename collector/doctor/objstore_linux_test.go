//go:build linux

package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/pkg/objstore"
)

// TestObjectStore against SeaweedFS on loopback: a bucket that lists and
// takes an object (deleted again), a wrong secret key, a bucket that does
// not exist, no credentials, and the server stopped — each named.
func TestObjectStore(t *testing.T) {
	s := seaweedtest.Start(t)
	c := s.Client(t, "doctor-test")
	cfg := agent.Defaults()
	cfg.Node = "node1"
	cfg.ObjectStore.URL, cfg.ObjectStore.Endpoint, cfg.ObjectStore.PathStyle = "s3://doctor-test/cluster-a", s.Endpoint, true
	keys := map[string]string{"AWS_ACCESS_KEY_ID": seaweedtest.AccessKey, "AWS_SECRET_ACCESS_KEY": seaweedtest.SecretKey}
	env := func(k string) string { return keys[k] }
	run := func(cfg agent.Config) map[string]Check {
		cs := objectStoreChecks(context.Background(), &cfg, env, 10*time.Second)
		for _, c := range cs {
			t.Logf("%s %s: %s — %s", c.Status, c.Name, c.Detail, c.Cost)
			if !c.Remote {
				t.Errorf("%s: not remote", c.Name)
			}
		}
		return byName(cs)
	}
	want := func(cs map[string]Check, name string, st Status, detail ...string) {
		t.Helper()
		c := wantCheck(t, cs, name, st, detail...)
		if strings.Contains(c.Detail+c.Cost, seaweedtest.SecretKey) {
			t.Errorf("%s shows the secret key", name)
		}
	}

	cs := run(cfg)
	want(cs, "object store reachable", OK, "s3://doctor-test/cluster-a at "+s.Endpoint+" answers")
	want(cs, "object store credentials", OK, "access key "+seaweedtest.AccessKey+" from environment: accepted")
	want(cs, "object store writable", OK, "written, read back and deleted")
	var left []string
	c.List(context.Background(), "", 0, func(o objstore.Object) error { left = append(left, o.Key); return nil })
	if len(left) > 0 {
		t.Errorf("objects left in the bucket: %v", left)
	}

	keys["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
	cs = run(cfg)
	want(cs, "object store reachable", OK)
	want(cs, "object store credentials", Missing, "the object store refused the credentials", "SignatureDoesNotMatch")
	want(cs, "object store writable", Unknown)
	keys["AWS_SECRET_ACCESS_KEY"] = seaweedtest.SecretKey

	other := cfg
	other.ObjectStore.URL = "s3://doctor-no-such-bucket"
	cs = run(other)
	want(cs, "object store credentials", OK)
	want(cs, "object store writable", Missing, "the bucket does not exist")

	delete(keys, "AWS_ACCESS_KEY_ID")
	delete(keys, "AWS_SECRET_ACCESS_KEY")
	keys["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
	cs = run(cfg)
	want(cs, "object store credentials", Missing, "no S3 credentials")
	keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"] = seaweedtest.AccessKey, seaweedtest.SecretKey

	s.Stop()
	cs = run(cfg)
	want(cs, "object store reachable", Missing, "the object store is unreachable", "connection refused")
	want(cs, "object store credentials", Unknown)

	cfg.ObjectStore.URL = ""
	if cs := objectStoreChecks(context.Background(), &cfg, env, time.Second); len(cs) != 1 || cs[0].Status != Unused {
		t.Errorf("no object store: %+v", cs)
	}
}
