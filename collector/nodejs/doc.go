// Package nodejs finds, in a Node.js executable, where the functions that
// run its event loop's JavaScript callbacks begin, so the collector can
// attach uprobes to them (bpf/socket/nodeasync.h; docs/assembly.md
// "Node.js"): node::InternalCallbackScope's two constructors and its
// Close(), through which every callback into JavaScript and the ticks and
// microtasks it queues pass, and node::AsyncWrap::MakeCallback, which names
// the resource whose callback a scope runs. They are C++ symbols of node's
// own (Node.js 18 to 22 keep them; the exported AsyncWrap and the scope
// class are what native addons build on), matched by their mangled names'
// prefixes so that a parameter added at the end does not lose them.
package nodejs
