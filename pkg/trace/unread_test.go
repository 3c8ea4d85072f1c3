package trace

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// damaged answers like a reader one of whose shards (on node) could not be
// read: every other span, and the shard's error.
type damaged struct {
	Source
	err error
}

func (d damaged) Lookup(ctx context.Context, from, to int64, keys []span.Key) ([]span.Span, error) {
	s, err := d.Source.Lookup(ctx, from, to, keys)
	return s, errors.Join(err, d.err)
}

// TestUnreadNodeKeepsOtherNodesIDs: a shard that cannot be read leaves the
// X-Request-ID rule in force on the nodes that were read (an inbound
// message with the id elsewhere cannot be in its process's data), and only
// there: on the unread node the id ties nothing, as when it was not looked
// up at all (TestPluginSurvivesDamage: the good node's trace was 12 spans
// with a damaged node beside it, 18 without it).
func TestUnreadNodeKeepsOtherNodesIDs(t *testing.T) {
	r := fill(t, []spangen.Trace{{Spans: xreq(0, reqOpts{xrid: "a"})}})
	cfg := Config{Now: func() time.Time { return time.Unix(0, base).Add(10 * time.Minute) }}
	shardOn := func(node string) error {
		return &store.ShardError{Shard: "/data/" + node + "/shard-1", Err: io.ErrUnexpectedEOF}
	}
	for _, c := range []struct {
		name string
		err  error
		want map[int]int
	}{
		{"another node's shard unread: the whole tree", shardOn("n9"), whole},
		{"another node's manifest unread: the whole tree", &store.NodeError{Node: "n9", Err: io.ErrUnexpectedEOF}, whole},
		{"a shard of the proxy's node unread: the call is tied by nothing", shardOn("n1"), front},
		{"an error naming no node: nothing tied by the id", io.ErrUnexpectedEOF, front},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Assemble(context.Background(), damaged{r, c.err}, cfg, strconv.Itoa(kClient), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, c.name, got, tree(0, c.want), nil)
		})
	}
}
