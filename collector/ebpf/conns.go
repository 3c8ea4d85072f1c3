//go:build linux

package ebpf

import "github.com/zerotrace/zerotrace/collector/session"

// The capture's connections (under mu), by process and socket, with each
// process's sockets listed so that a process's end closes its connections
// at once: no close syscall comes for the descriptors the kernel closes at
// a process's exit, and its connections would otherwise wait to be idle
// three timeouts long (tick) before their open exchanges ended.

// connAdd records conn as k's connection.
func (c *Capture) connAdd(k connKey, conn *session.Conn) {
	c.conns[k] = conn
	socks := c.pidSocks[k.pid]
	if socks == nil {
		socks = map[uint64]struct{}{}
		c.pidSocks[k.pid] = socks
	}
	socks[k.sock] = struct{}{}
}

// connClose ends k's connection conn at now (its flow, its open
// exchanges: conn.Close) and forgets it.
func (c *Capture) connClose(k connKey, conn *session.Conn, now int64) {
	c.flowClose(k)
	conn.Close(now)
	c.connDrop(k)
}

// connDrop forgets k's connection.
func (c *Capture) connDrop(k connKey) {
	delete(c.conns, k)
	if socks := c.pidSocks[k.pid]; socks != nil {
		delete(socks, k.sock)
		if len(socks) == 0 {
			delete(c.pidSocks, k.pid)
		}
	}
}

// connsExited closes the connections of process pid, which exited: the
// event telling it comes after every event of the process in the ring
// (bpf/socket/procs.h), so nothing more of them will come. A response read
// until the close ends here, a request without response ends as a timeout,
// as at a close. An exec keeps its descriptors, and its connections.
func (c *Capture) connsExited(pid uint32, now int64) {
	for sock := range c.pidSocks[pid] {
		k := connKey{pid, sock}
		c.connClose(k, c.conns[k], now)
	}
}
