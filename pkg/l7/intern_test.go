package l7

import (
	"fmt"
	"sync"
	"testing"
)

// TestIntern: every value comes back byte for byte, whether its slot held
// it, held another value (collisions: 4 096 values over 256 slots) or is
// being replaced by another goroutine meanwhile.
func TestIntern(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for i := range 4096 {
					b := []byte(fmt.Sprintf("host-%d.example:%d", (i*7+g)%4096, round))
					if got := intern(b); got != string(b) {
						t.Errorf("intern(%q) = %q", b, got)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if intern(nil) != "" || intern([]byte{}) != "" {
		t.Error("empty value not empty")
	}
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	if intern(long) != string(long) {
		t.Error("long value changed")
	}
}

// TestInternNoAllocOnHit: a repeated value costs no allocation.
func TestInternNoAllocOnHit(t *testing.T) {
	b := []byte("reviews.default.svc.cluster.local:9080")
	intern(b)
	if n := testing.AllocsPerRun(100, func() { intern(b) }); n != 0 {
		t.Errorf("%v allocations per repeated value, want 0", n)
	}
}
