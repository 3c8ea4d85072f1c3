package ebpf

import (
	"testing"
	"time"
)

// TestBudget: a burst of one second's worth, then one admission per token
// refilled; spans beyond the budget push admissions back by at most a second.
func TestBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := &budget{rate: 4, tokens: 4, last: t0}
	for i := range 4 {
		if !b.admit(t0) {
			t.Fatalf("span %d of the burst: not admitted", i)
		}
		b.spend(t0)
	}
	if b.admit(t0) {
		t.Fatal("admitted with the burst spent")
	}
	if !b.admit(t0.Add(250 * time.Millisecond)) { // one token back
		t.Fatal("not admitted after a token's refill")
	}
	for range 100 { // an admitted connection's spans are never cut: the debt is bounded
		b.spend(t0.Add(250 * time.Millisecond))
	}
	if b.tokens != -4 {
		t.Fatalf("tokens %v after overspending, want -4", b.tokens)
	}
	if b.admit(t0.Add(1250*time.Millisecond)) || !b.admit(t0.Add(1500*time.Millisecond)) {
		t.Fatalf("after a second's debt: admission should resume 1.25 s later")
	}
	var none budget // no budget: everything admitted
	if !none.admit(t0) {
		t.Fatal("no budget: not admitted")
	}
}
