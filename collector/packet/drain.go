//go:build linux

package packet

import (
	"sync"
	"sync/atomic"
	"time"
)

// Draining: Flush and Close take the frames the kernel has already written
// into a ring, not only those its reader happened to have read. Without it,
// a Flush right after a client exited ended flows whose last frames (a
// response, a FIN) were still in the ring — in a block the kernel had not
// yet handed over (its retire timer fires every 10 ms) or one the reader
// had not reached — and Close dropped whatever the rings held at shutdown.
//
// The target is a count: the kernel's PACKET_STATISTICS say how many frames
// it wrote into the ring (Ring.Written), Poll counts the frames of every
// block it hands back (Ring.Read). A Flush registers that target with each
// ring's loop; the loop, after each Poll, releases the waiters whose target
// it has reached. The frames' own cost is unchanged: one atomic add per
// block in Poll and one atomic load per Poll in the loop.

// drainWaits are a ring loop's Flush waiters.
type drainWaits struct {
	n     atomic.Int32 // len(waits), read by the loop without the lock
	mu    sync.Mutex
	waits []drainWait
}

type drainWait struct {
	target uint64
	done   chan struct{}
}

// register adds a waiter for every frame written into the ring so far; it
// returns nil if the loop has read them already (or the ring's counters
// cannot be read: nothing to wait for then).
func (rs *ringState) register() <-chan struct{} {
	target, err := rs.ring.Written()
	if err != nil {
		rs.c.opt.Logger.Warn("packet flush: reading the ring's counters", "iface", rs.key(), "err", err)
		return nil
	}
	d := &rs.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	// n before Read: a loop whose Poll ended before this Read sees n > 0
	// afterwards, and then takes mu, after this waiter is added.
	d.n.Add(1)
	if rs.ring.Read() >= target {
		d.n.Add(-1)
		return nil
	}
	w := drainWait{target: target, done: make(chan struct{})}
	d.waits = append(d.waits, w)
	return w.done
}

// release lets go the waiters whose frames the loop has read (all their
// frames handled: Poll returns after its callbacks).
func (rs *ringState) release() {
	d := &rs.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	read := rs.ring.Read()
	kept := d.waits[:0]
	for _, w := range d.waits {
		if read >= w.target {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	d.waits = kept
	d.n.Store(int32(len(kept)))
}

// drainLoops waits until every ring's loop has read the frames the kernel
// had written into its ring when drainLoops was called, a loop stopped
// (Close then drains its ring itself), or DrainBound passed.
func (c *Capture) drainLoops() {
	waits := make([]<-chan struct{}, len(c.rings))
	for i, rs := range c.rings {
		waits[i] = rs.register()
	}
	t := time.NewTimer(DrainBound)
	defer t.Stop()
	for i, rs := range c.rings {
		if waits[i] == nil {
			continue
		}
		select {
		case <-waits[i]:
		case <-rs.stopped:
		case <-t.C:
			c.opt.Logger.Warn("packet flush: a ring's reader did not catch up", "iface", rs.key(), "bound", DrainBound)
			return
		}
	}
}

// drainStopped reads, once the loops have stopped, what the rings still
// hold, each ring on a goroutine of its own.
func (c *Capture) drainStopped() {
	deadline := time.Now().Add(DrainBound)
	var wg sync.WaitGroup
	for _, rs := range c.rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !rs.ring.Drain(deadline, rs.onFrame) {
				c.opt.Logger.Warn("packet capture: a ring was not drained at close", "iface", rs.key(), "bound", DrainBound)
			}
		}()
	}
	wg.Wait()
}
