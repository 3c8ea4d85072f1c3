//go:build linux

package otlpin

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// ListenIn returns a Listen that opens its sockets inside a network
// namespace (a name under /run/netns or a path): the node's network when
// the collector runs outside it (the demo's nodes are namespaces). A
// listening socket stays in the namespace it was made in.
func ListenIn(netns string) func(network, addr string) (net.Listener, error) {
	if netns == "" {
		return net.Listen
	}
	path := netns
	if !strings.Contains(path, "/") {
		path = "/run/netns/" + path
	}
	return func(network, addr string) (net.Listener, error) {
		type result struct {
			ln  net.Listener
			err error
		}
		c := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // left locked, and so discarded, if switching back fails
			orig, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				c <- result{nil, err}
				return
			}
			defer orig.Close()
			target, err := os.Open(path)
			if err != nil {
				c <- result{nil, fmt.Errorf("netns %s: %w", netns, err)}
				return
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				c <- result{nil, fmt.Errorf("entering netns %s: %w", netns, err)}
				return
			}
			ln, lerr := net.Listen(network, addr)
			if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
				if ln != nil {
					ln.Close()
				}
				c <- result{nil, fmt.Errorf("leaving netns %s: %w", netns, err)}
				return
			}
			runtime.UnlockOSThread()
			c <- result{ln, lerr}
		}()
		r := <-c
		return r.ln, r.err
	}
}
