package inflight

import (
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func TestMax(t *testing.T) {
	iv := func(pairs ...int64) []span.Span {
		var out []span.Span
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, span.Span{StartNs: pairs[i], EndNs: pairs[i+1]})
		}
		return out
	}
	for _, c := range []struct {
		name  string
		spans []span.Span
		want  int
	}{
		{"none", nil, 0},
		{"one", iv(1, 5), 1},
		{"one after the other", iv(1, 2, 3, 4, 5, 6), 1},
		{"touching", iv(1, 2, 2, 3, 3, 4), 1},
		{"nested", iv(1, 10, 2, 9, 3, 8), 3},
		// a long span overlapping three short ones that never overlap each
		// other: two at once, not four
		{"a long one over a sequence", iv(0, 100, 10, 20, 30, 40, 50, 60), 2},
		{"staggered", iv(0, 10, 5, 15, 12, 20, 14, 30), 3},
	} {
		if got := Max(c.spans); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
