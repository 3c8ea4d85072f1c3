// Package storetest writes generated traces into a data directory the way
// collectors do, one node directory per node, for the tests of the readers.
package storetest

import (
	"testing"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// WriteTraces stores traces under dir, sealing each node's shard; group is
// the data group of the sealed files ("" for none).
func WriteTraces(tb testing.TB, dir, group string, traces []spangen.Trace) {
	tb.Helper()
	ws := map[string]*store.Writer{}
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if ws[s.Node] == nil {
				w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: s.Node, Group: group, NoBackground: true})
				if err != nil {
					tb.Fatal(err)
				}
				ws[s.Node] = w
			}
			if err := ws[s.Node].Write(s); err != nil {
				tb.Fatal(err)
			}
		}
	}
	for _, w := range ws {
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
	}
}
