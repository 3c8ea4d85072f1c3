// Package spangen generates realistic Bookinfo-shaped spans: every request of
// the reference scenario (loadgen → productpage → details, reviews → ratings,
// with a sidecar proxy in every pod, on two nodes joined by a VXLAN tunnel)
// yields the 38 observation points of the demo — 24 process spans (c-p, s-p)
// and 14 packet spans (c, c-nd, s-nd, s) — with the correlation keys set the
// way real capture sets them:
//
//   - TCP sequence numbers: one random ISN per connection and direction; a
//     message's number is the same at every observation point of its hop.
//   - Syscall trace ids: computed by replaying every message on every thread in
//     time order through the collector's request-context rule (causal.go: a
//     server request takes a fresh id that its thread holds until the response
//     begins; a thread's calls carry the id while it holds exactly one
//     request and has not held two at once since it last held none). Proxies run one event-loop thread shared by all concurrent
//     requests and Node.js runs one event loop, so their calls carry no id
//     while requests overlap, exactly as on a real machine; Python, Ruby and
//     Java run a thread per request.
//   - X-Request-ID: every sidecar takes the incoming id or makes one, passes it
//     upstream and adds it to the response it sends downstream; the services
//     neither forward nor echo it.
//
// Each generated Trace carries the ground truth: the observation-point label
// of every span and the index of its expected parent. Points, the static list
// of the 38 observation points and their parents, is the written-down shape of
// one Bookinfo trace.
package spangen
