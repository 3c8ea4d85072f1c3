package ebpf

import (
	"sync"
	"time"
)

// budget is the overload policy's token bucket: rate spans per second, a
// burst of one second's worth. Spans written take a token each (the count
// may go a second's worth below zero); a connection is admitted only while
// a token is left, so beyond the budget whole new connections are shed and
// the spans of admitted ones are never cut.
type budget struct {
	mu     sync.Mutex
	rate   float64 // spans per second; 0: no budget
	tokens float64
	last   time.Time
}

func newBudget(rate float64) *budget {
	return &budget{rate: rate, tokens: rate, last: time.Now()}
}

// on reports whether there is a budget at all: without one the capture
// reads no clock per span or connection (a time.Now per span was ~1.7% of
// the collector's CPU under nginx + wrk).
func (b *budget) on() bool { return b.rate > 0 }

func (b *budget) refill(now time.Time) {
	b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

// admit reports whether a new connection may be followed now.
func (b *budget) admit(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens >= 1
}

// spend takes a token for a span written.
func (b *budget) spend(now time.Time) {
	if b.rate <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens = max(b.tokens-1, -b.rate)
}
