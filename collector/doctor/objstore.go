package doctor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/zerotrace/zerotrace/collector/agent"
	"github.com/zerotrace/zerotrace/pkg/objstore"
)

// noUpload is what an unusable object store costs.
const noUpload = "this node's shards are not uploaded, so Grafana reading the bucket lacks its spans; the collector keeps them locally and retries"

var errEnough = errors.New("one page is enough")

// objectStoreChecks lists the bucket (reachable, credentials accepted) and
// writes, reads back and deletes an object under the prefix (writable).
func objectStoreChecks(ctx context.Context, cfg *agent.Config, env func(string) string, timeout time.Duration) []Check {
	const reach, creds, write = "object store reachable", "object store credentials", "object store writable"
	url := cfg.ObjectStore.URL
	if url == "" {
		return []Check{unused("object store", "none configured (object_store.url, --object-store): shards stay on this node")}
	}
	remote := func(c Check) Check { c.Remote = true; return c }
	c, prefix, cr, err := cfg.ObjectStoreClient(env)
	if err != nil {
		return []Check{remote(missing(creds, err.Error(), "the collector does not start with an object store configured and no credentials")),
			remote(unknown(reach, "no client")), remote(unknown(write, "no client"))}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = c.List(ctx, prefix, 1, func(objstore.Object) error { return errEnough })
	if errors.Is(err, errEnough) {
		err = nil
	}
	where := fmt.Sprintf("%s at %s", url, c.Endpoint())
	problem := objstore.Problem(err)
	switch {
	case err == nil:
	case objstore.IsUnreachable(err):
		return []Check{remote(missing(reach, where+": "+problem+": "+err.Error(), noUpload)),
			remote(unknown(creds, cr.String()+": not checked, the server did not answer")),
			remote(unknown(write, "not checked, the server did not answer"))}
	case objstore.IsAuth(err):
		return []Check{remote(ok(reach, where+" answers")),
			remote(missing(creds, cr.String()+": "+problem+": "+err.Error(), noUpload+" (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")),
			remote(unknown(write, "not checked, the credentials were refused"))}
	case problem != "":
		return []Check{remote(ok(reach, where+" answers")), remote(ok(creds, cr.String()+": accepted")),
			remote(missing(write, problem+": "+err.Error(), noUpload))}
	default:
		return []Check{remote(ok(reach, where+" answers")), remote(unknown(creds, cr.String()+": not checked")),
			remote(missing(write, "listing failed: "+err.Error(), noUpload))}
	}
	out := []Check{remote(ok(reach, where+" answers")), remote(ok(creds, cr.String()+": accepted (the bucket lists)"))}
	key := prefix + ".zerotrace-doctor/" + cfg.Node + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	body := []byte("zerotrace doctor: this object is deleted at once\n")
	err = c.PutBytes(ctx, key, body)
	if err == nil {
		var n int64
		if n, err = c.Head(ctx, key); err == nil && n != int64(len(body)) {
			err = fmt.Errorf("HEAD says %d bytes, %d were written", n, len(body))
		}
		if derr := c.Delete(ctx, key); err == nil && derr != nil {
			err = fmt.Errorf("deleting %s: %w", key, derr)
		}
	}
	if err != nil {
		if p := objstore.Problem(err); p != "" {
			err = fmt.Errorf("%s: %w", p, err)
		}
		return append(out, remote(missing(write, err.Error(), noUpload)))
	}
	return append(out, remote(ok(write, "an object under "+url+" was written, read back and deleted")))
}
