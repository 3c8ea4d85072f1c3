//go:build linux

package ebpf

import (
	"time"

	"github.com/zerotrace/zerotrace/collector/session"
)

// admit applies the overload policy (budget.go) to an event of connection
// k, whose session is conn (nil: none yet). A shed connection's events are
// dropped until it closes or its socket address is reused; over the span
// budget a new connection is shed whole (nothing of it was followed, so no
// message is cut). It reports whether the event goes on.
func (c *Capture) admit(k connKey, conn *session.Conn, e *Event, now int64) bool {
	if _, ok := c.shed[k]; ok {
		switch e.Dir {
		case DirClose:
			delete(c.shed, k)
			return false
		case DirAccepted, DirConnected: // a new connection on a reused socket address
			delete(c.shed, k)
		default:
			c.shed[k] = now
			c.ShedEvents++
			return false
		}
	}
	if conn == nil && e.Dir != DirClose && c.budget.on() && !c.budget.admit(time.Now()) {
		// Over the span budget: shed the whole connection (nothing of it
		// was followed, so no message is cut) until it closes.
		c.shed[k] = now
		c.ShedConns++
		c.ShedEvents++
		return false
	}
	return true
}
