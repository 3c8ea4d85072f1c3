//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/zerotrace/zerotrace/collector/causality"
	"github.com/zerotrace/zerotrace/collector/cgroup"
	"github.com/zerotrace/zerotrace/collector/l4flight"
	"github.com/zerotrace/zerotrace/collector/proc"
	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/pkg/redact"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Options configure a Capture.
type Options struct {
	Node        string
	PayloadSize int           // bytes of payload per message (default 1024, at most 16383)
	RingMiB     int           // the ring buffer's size in MiB (default DefaultRingMiB; ring.go)
	RingPoll    time.Duration // how often the ring's reader wakes (default DefaultRingPoll; ring.go)
	NetNS       []uint32      // capture only these network namespaces (inodes); empty: all
	Timeout     time.Duration
	Logger      *slog.Logger
	// SpanBudget is the overload policy: spans per second the capture
	// writes before it sheds whole new connections (0: no budget).
	SpanBudget float64
	// Service names a process (default: its executable name).
	Service func(proc.Info) string
	// Redact removes secrets from URLs and command lines (default:
	// redact.Default()).
	Redact *redact.Redactor
	// TLSDisabled: TLS library calls are not read (config tls.enabled);
	// TLSExclude names processes (comm) whose calls are not read
	// (tls.exclude_processes; docs/tls.md).
	TLSDisabled bool
	TLSExclude  []string
}

// Capture is a running socket capture.
type Capture struct {
	opt   Options
	objs  SocketObjects
	links []link.Link // under linksMu once Start returned: the trackers add uprobes
	rd    *ringbuf.Reader
	emit  func(*span.Span)
	procs proc.Cache
	guard causality.Guard
	gos   goTracker
	gotls goTLSTracker
	pys   pyTracker
	nodes nodeTracker
	tls   tlsTracker
	pids  map[uint32]bool // processes seen (Go tracking is decided once)
	ids   *span.IDGenerator
	wall  int64             // wall clock minus CLOCK_MONOTONIC, ns
	final map[string]uint64 // the kernel counters when Close detached (Stats)

	mu           sync.Mutex
	conns        map[connKey]*session.Conn      // conns.go
	pidSocks     map[uint32]map[uint64]struct{} // each process's sockets in conns (conns.go)
	flows        map[connKey]*l4flight.Flow     // TLS connections whose plaintext is not read (l4flight.go)
	reads        map[threadKey]lastRead         // a thread's last socket event, a read (forward.go)
	fwd          map[connKey]forwardCtx         // a connection's first request's context (forward.go)
	budget       *budget
	shed         map[connKey]int64 // connections shed over the budget: last event, ns
	cgroupWarned bool              // an unknown cgroup layout is logged once
	done         chan struct{}
	wg           sync.WaitGroup

	linksMu     sync.Mutex
	linksClosed bool // Close detached: uprobes attached later are closed at once (addLinks)

	q          *records      // ring records from the reader to the session worker
	readerDone chan struct{} // the reader stopped: the worker drains and stops
	draining   sync.Mutex    // one consumer of q at a time (worker or Flush), in order
	caught     caughtUp      // Flush's wait for the reader (caughtup.go)

	Decoded, BadEvents uint64
	// ShedConns and ShedEvents count the connections shed over the span
	// budget and their events dropped (under mu; see ShedStats).
	ShedConns, ShedEvents uint64
}

type connKey struct {
	pid  uint32
	sock uint64
}

// hook is a syscall tracepoint and the program attached to it.
type hook struct {
	name string
	prog func(*SocketPrograms) *ebpf.Program
}

var tracepoints = []hook{
	{"sys_enter_write", func(p *SocketPrograms) *ebpf.Program { return p.EnterWrite }},
	{"sys_exit_write", func(p *SocketPrograms) *ebpf.Program { return p.ExitWrite }},
	{"sys_enter_read", func(p *SocketPrograms) *ebpf.Program { return p.EnterRead }},
	{"sys_exit_read", func(p *SocketPrograms) *ebpf.Program { return p.ExitRead }},
	{"sys_enter_sendto", func(p *SocketPrograms) *ebpf.Program { return p.EnterSendto }},
	{"sys_exit_sendto", func(p *SocketPrograms) *ebpf.Program { return p.ExitSendto }},
	{"sys_enter_recvfrom", func(p *SocketPrograms) *ebpf.Program { return p.EnterRecvfrom }},
	{"sys_exit_recvfrom", func(p *SocketPrograms) *ebpf.Program { return p.ExitRecvfrom }},
	{"sys_enter_writev", func(p *SocketPrograms) *ebpf.Program { return p.EnterWritev }},
	{"sys_exit_writev", func(p *SocketPrograms) *ebpf.Program { return p.ExitWritev }},
	{"sys_enter_readv", func(p *SocketPrograms) *ebpf.Program { return p.EnterReadv }},
	{"sys_exit_readv", func(p *SocketPrograms) *ebpf.Program { return p.ExitReadv }},
	{"sys_enter_sendmsg", func(p *SocketPrograms) *ebpf.Program { return p.EnterSendmsg }},
	{"sys_exit_sendmsg", func(p *SocketPrograms) *ebpf.Program { return p.ExitSendmsg }},
	{"sys_enter_recvmsg", func(p *SocketPrograms) *ebpf.Program { return p.EnterRecvmsg }},
	{"sys_exit_recvmsg", func(p *SocketPrograms) *ebpf.Program { return p.ExitRecvmsg }},
	{"sys_enter_sendmmsg", func(p *SocketPrograms) *ebpf.Program { return p.EnterSendmmsg }},
	{"sys_exit_sendmmsg", func(p *SocketPrograms) *ebpf.Program { return p.ExitSendmmsg }},
	{"sys_enter_recvmmsg", func(p *SocketPrograms) *ebpf.Program { return p.EnterRecvmmsg }},
	{"sys_exit_recvmmsg", func(p *SocketPrograms) *ebpf.Program { return p.ExitRecvmmsg }},
	{"sys_enter_close", func(p *SocketPrograms) *ebpf.Program { return p.EnterClose }},
	{"sys_exit_accept", func(p *SocketPrograms) *ebpf.Program { return p.ExitAccept }},
	{"sys_exit_accept4", func(p *SocketPrograms) *ebpf.Program { return p.ExitAccept4 }},
	{"sys_enter_connect", func(p *SocketPrograms) *ebpf.Program { return p.EnterConnect }},
	{"sys_exit_connect", func(p *SocketPrograms) *ebpf.Program { return p.ExitConnect }},
	{"sys_enter_futex", func(p *SocketPrograms) *ebpf.Program { return p.EnterFutex }},
	{"sys_exit_futex", func(p *SocketPrograms) *ebpf.Program { return p.ExitFutex }},
}

// waitTracepoints are the event-loop waits (bpf/socket/wait.h, one
// program): attached only when some process's TLS is not read
// (someTLSUnread), the only case whose events' EventWaited flag is read
// (forward.go). They fire for every wait of every process on the host
// (~+180 ns each, docs/capture.md), and a Go program waits in its netpoller
// once per blocking socket call.
var waitTracepoints = []hook{
	{"sys_enter_epoll_wait", enterWait},
	{"sys_enter_epoll_pwait", enterWait},
	{"sys_enter_epoll_pwait2", enterWait},
	{"sys_enter_poll", enterWait},
	{"sys_enter_ppoll", enterWait},
	{"sys_enter_select", enterWait},
	{"sys_enter_pselect6", enterWait},
}

func enterWait(p *SocketPrograms) *ebpf.Program { return p.EnterWait }

// someTLSUnread reports whether opt leaves some process's TLS unread
// (tls.enabled false, tls.exclude_processes): forwardNote follows only
// such processes, and only it reads EventWaited.
func someTLSUnread(opt Options) bool { return opt.TLSDisabled || len(opt.TLSExclude) > 0 }

// hooks are the syscall tracepoints Start attaches for opt.
func hooks(opt Options) []hook {
	if !someTLSUnread(opt) {
		return tracepoints
	}
	return append(slices.Clip(tracepoints), waitTracepoints...)
}

// Start loads and attaches the capture; emit receives every finished span
// (from the capture's goroutine).
func Start(opt Options, emit func(*span.Span)) (*Capture, error) {
	if opt.PayloadSize <= 0 {
		opt.PayloadSize = 1024
	}
	if opt.PayloadSize > 16383 {
		return nil, fmt.Errorf("payload size %d: at most 16383", opt.PayloadSize)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.RingMiB == 0 {
		opt.RingMiB = DefaultRingMiB
	}
	if err := CheckRingMiB(opt.RingMiB); err != nil {
		return nil, err
	}
	if opt.RingPoll == 0 {
		opt.RingPoll = DefaultRingPoll
	}
	if err := CheckRingPoll(opt.RingPoll); err != nil {
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.RingPoll > DefaultRingPoll {
		opt.Logger.Warn("ring poll longer than the default: records wait longer in the ring, which fills more between reads, and a new process's goroutine tracking and TLS uprobes start later (docs/capture.md, ebpf.ring_poll)",
			"ring_poll", opt.RingPoll, "default", DefaultRingPoll)
	}
	if opt.Service == nil {
		opt.Service = func(i proc.Info) string { return i.Name }
	}
	if err := ensureTracefs(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("removing memlock limit: %w", err)
	}
	spec, err := LoadSocket()
	if err != nil {
		return nil, fmt.Errorf("loading BPF spec: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(opt.RingMiB) << 20
	var mono unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	wall := time.Now().UnixNano() - mono.Nano()
	for name, v := range map[string]any{"payload_cap": uint32(opt.PayloadSize), "self_tgid": uint32(os.Getpid()),
		"scope_enabled": boolByte(len(opt.NetNS) > 0), "realtime_offset_ns": wall, "wake_gap_ns": wakeGapNs(opt.RingPoll),
		"tls_exclude_any": boolByte(len(opt.TLSExclude) > 0)} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	c := &Capture{opt: opt, conns: map[connKey]*session.Conn{}, pidSocks: map[uint32]map[uint64]struct{}{}, flows: map[connKey]*l4flight.Flow{}, done: make(chan struct{}),
		reads: map[threadKey]lastRead{}, fwd: map[connKey]forwardCtx{},
		ids: span.NewIDGenerator(opt.Node, time.Now()), budget: newBudget(opt.SpanBudget), shed: map[connKey]int64{}}
	c.emit = func(s *span.Span) {
		if c.budget.on() {
			c.budget.spend(time.Now())
		}
		emit(s)
	}
	c.procs.Redact = opt.Redact
	c.guard.Logger = opt.Logger
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading BPF programs: %+v", ve)
		}
		return nil, fmt.Errorf("loading BPF programs: %w", err)
	}
	for _, ns := range opt.NetNS {
		if err := c.objs.NetnsScope.Put(ns, uint8(1)); err != nil {
			c.Close()
			return nil, fmt.Errorf("scoping to netns %d: %w", ns, err)
		}
	}
	for _, tp := range hooks(opt) {
		l, err := link.Tracepoint("syscalls", tp.name, tp.prog(&c.objs.SocketPrograms), nil)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("attaching %s: %w", tp.name, err)
		}
		c.links = append(c.links, l)
	}
	// Handoff to pool workers (bpf/socket/handoff.h); without it causality
	// falls back to containment.
	if l, err := link.AttachTracing(link.TracingOptions{Program: c.objs.OnWaking}); err != nil {
		opt.Logger.Warn("handoff to worker threads not traced: attaching tp_btf/sched_waking failed", "err", err)
	} else {
		c.links = append(c.links, l)
	}
	c.attachProcesses()
	if c.rd, err = ringbuf.NewReader(c.objs.Events); err != nil {
		c.Close()
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	c.wall = wall
	c.gos.queue = make(chan uint32, 64)
	c.pys.queue = make(chan uint32, 256)
	c.nodes.queue = make(chan uint32, 256)
	c.q, c.readerDone = newRecords(recordsLimit), make(chan struct{})
	c.wg.Add(6)
	go c.read()
	go c.work()
	go c.tick()
	go c.goTrack()
	go c.pyTrack()
	go c.nodeTrack()
	if err := c.startTLS(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// recordsLimit bounds the records waiting between the ring reader and the
// session worker (records.go): twice the ring.
const recordsLimit = 16 << 20

// read drains the ring into chunks of records for the session worker; it
// publishes a chunk when the ring is empty or the chunk is full.
func (c *Capture) read() {
	defer c.wg.Done()
	defer close(c.readerDone)
	var rec ringbuf.Record
	chunk := c.q.chunk()
	// The BPF programs write without waking the reader
	// (bpf/socket/maps/events.h): it wakes on this deadline, which bounds
	// how long a record waits in the ring; but for records of flags
	// EventPastCopy, which wake it (at most once per wakeGap on each CPU).
	// Having read one, it reads the ring again between wakeGap and twice
	// that later (attend), so that one not woken for (within a wakeGap of
	// the last that woke it) waits no longer.
	poll := c.opt.RingPoll
	deadline := time.Now().Add(poll)
	c.rd.SetDeadline(deadline)
	woken := wakes(poll) // else no record wakes it, and it reads on its poll alone
	past := false        // a record of flags EventPastCopy read, its wait not yet set
	attend := func(now time.Time) {
		// The reader's wait is in whole milliseconds, rounded down
		// (cilium/ebpf's epoll timeout): one more makes it wait at
		// least wakeGap (a wait of 0 would return at once, and the
		// records committed just after would wait a whole poll).
		if d := now.Add(wakeGap + time.Millisecond); d.Before(deadline) {
			deadline, past = d, false
			c.rd.SetDeadline(deadline)
		} // else the deadline comes first, and sets it
	}
	for {
		began := c.caught.gen.Load()
		if err := c.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrClosed) {
				c.q.publish(chunk)
				return
			}
			// Either comes once the ring is empty.
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ringbuf.ErrFlushed) {
				if len(chunk) > 0 {
					c.q.publish(chunk)
					chunk = c.q.chunk()
				}
				c.caught.release(began)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				now := time.Now()
				deadline = now.Add(poll)
				c.rd.SetDeadline(deadline)
				if past {
					attend(now)
				}
			}
			continue
		}
		chunk = add(chunk, eventRecord(rec.RawSample))
		if woken && pastCopy(rec.RawSample) {
			past = true
		}
		if len(chunk) >= chunkSize || c.rd.AvailableBytes() == 0 {
			c.q.publish(chunk)
			chunk = c.q.chunk()
			if past && c.rd.AvailableBytes() == 0 {
				attend(time.Now())
			}
		}
	}
}

// work is the session worker: it decodes and handles the records the
// reader publishes, in the ring's order, until the reader has stopped.
func (c *Capture) work() {
	defer c.wg.Done()
	for {
		select {
		case <-c.q.wake:
			c.drain()
		case <-c.readerDone:
			c.drain()
			return
		}
	}
}

// drain handles every record published so far.
func (c *Capture) drain() {
	if c.q == nil {
		return // Start failed before the reader started
	}
	c.draining.Lock()
	defer c.draining.Unlock()
	var e Event
	handle := func(r []byte) {
		if err := DecodeEvent(r, &e); err != nil {
			c.mu.Lock()
			c.BadEvents++
			c.mu.Unlock()
			return
		}
		c.handle(&e)
	}
	for {
		chunks := c.q.take()
		if len(chunks) == 0 {
			return
		}
		for _, ch := range chunks {
			each(ch, handle)
		}
		c.q.done(chunks)
	}
}

func (c *Capture) handle(e *Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Decoded++
	k := connKey{e.PID, e.SockID}
	conn := c.conns[k]
	now := int64(e.MonoNs) + c.wall
	if c.causalityEvent(e, now) {
		return
	}
	if e.Dir == DirProc {
		exited := e.Len != ProcExec
		if exited {
			c.connsExited(e.PID, now)
		}
		c.processEnded(e.PID)
		if exited {
			return
		}
		// What names the new program, for its first lookup in case it is
		// gone by then (a short-lived client).
		x := proc.ExecOf(e.Comm, e.Data, e.SockID)
		x.ArgStart = e.SyscallTraceID
		c.procs.Keep(e.PID, x)
		return
	}
	c.forwardNote(k, e, now)
	if !c.admit(k, conn, e, now) {
		return
	}
	if e.Dir == DirClose {
		if conn != nil {
			c.connClose(k, conn, now)
		} else {
			c.flowClose(k)
		}
		return
	}
	udp := e.L4 == 17
	if (e.Dir == DirAccepted || e.Dir == DirConnected) && conn != nil {
		// A new connection on a reused socket address: end the old session.
		c.flowClose(k)
		conn.Close(now)
		conn = nil
	}
	if conn == nil {
		conn = c.newConn(e, udp)
		c.connAdd(k, conn)
	}
	if e.TLS != 0 {
		conn.SetTLS(tlsFlag(e.TLS))
		c.flowDrop(k) // plaintext is read: its ciphertext makes no span
	} else if c.tlsRecord(e, conn, now) {
		return // ciphertext of a connection whose plaintext is read
	} else if c.flowFeed(k, conn, e, now) {
		return // ciphertext of a connection whose plaintext is not read
	}
	switch e.Dir {
	case DirAccepted:
		conn.SetRole(session.RoleServer)
		return
	case DirConnected:
		conn.SetRole(session.RoleClient)
		return
	}
	dir := session.Egress
	if e.Dir == DirIngress {
		dir = session.Ingress
	}
	conn.Feed(session.Chunk{Dir: dir, StartNs: now, EndNs: now, TCPSeq: e.TCPSeq, Data: e.Data, Len: int(e.Len), Skip: int(e.Skip),
		TID: e.TID, SyscallTraceID: c.forwardChunk(k, e)})
}

// causalityEvent hands a worker's verdict or a task's event (events that
// carry no socket data) to the causality guard; it reports whether e was
// one.
func (c *Capture) causalityEvent(e *Event, now int64) bool {
	switch e.Dir {
	case DirVerdict:
		for _, s := range c.guard.Verdict(e.PID, e.TID, e.SyscallTraceID, causality.Kind(e.Len), e.SockID, now) {
			c.emit(s)
		}
		return true
	case DirTask:
		for _, s := range c.guard.Task(e.PID, causality.TaskEvent(e.Len), e.SockID, e.SyscallTraceID, now) {
			c.emit(s)
		}
		return true
	}
	return false
}

// newConn starts the session of a connection's first event; the first
// event of a process also starts its discovery (processes.go).
func (c *Capture) newConn(e *Event, udp bool) *session.Conn {
	return session.NewConn(c.connMeta(e, udp), session.Config{Timeout: c.opt.Timeout, IDs: c.ids, UDP: udp,
		Body: c.bodyOf(e.SockID), Redact: c.opt.Redact}, c.guarded)
}

// connMeta is what a connection's first event and its process tell of it.
func (c *Capture) connMeta(e *Event, udp bool) session.ConnMeta {
	if !c.seenPID(e.PID) {
		c.newProcess(e.PID)
	}
	info := c.procs.Lookup(e.PID, e.TID, e.Comm)
	if errors.Is(info.CgroupErr, cgroup.ErrUnknownLayout) && !c.cgroupWarned {
		c.cgroupWarned = true
		c.opt.Logger.Warn("cgroup: no container id (logged once; such spans keep their process names)", "pid", e.PID,
			"process", info.Name, "err", info.CgroupErr)
	}
	return session.ConnMeta{
		Node: c.opt.Node, Source: span.SourceEBPF, NetNS: uint64(e.NetNS), SocketID: e.SockID, PID: e.PID,
		Comm: e.Comm, ProcessName: info.Name, Cmdline: info.Cmdline, ContainerID: info.ContainerID,
		Service: c.opt.Service(info), L4: l4Of(udp),
		LocalIP: e.LocalIP, LocalPort: e.LocalPort, RemoteIP: e.RemoteIP, RemotePort: e.RemotePort,
	}
}

// bodyOf returns the session's Body hook for socket sk: the rest of a
// message it counts by length is sent without payload (bpf/socket/bodies.h).
// A failed map update only costs those chunks their payload as before.
func (c *Capture) bodyOf(sk uint64) func(session.Dir, uint32, uint32) {
	return func(d session.Dir, start, end uint32) {
		c.objs.Bodies.Put(SocketBodyKey{Sk: sk, Dir: uint8(d)}, SocketBodyRange{Start: start, End: end})
	}
}

// guarded emits a span after the causality guard removed context ids its
// process cannot vouch for. s is the session's and reused after this call:
// a span the guard may hold for a verdict is copied first.
func (c *Capture) guarded(s *span.Span) {
	if causality.MayHold(s) {
		cp := *s
		s = &cp
	}
	if c.guard.Check(s) {
		c.emit(s)
	}
}

func (c *Capture) tick() {
	defer c.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		c.mu.Lock()
		for _, s := range c.guard.Expire(now) {
			c.emit(s)
		}
		for k, conn := range c.conns {
			conn.Tick(now)
			idle := conn.Idle()
			if f := c.flows[k]; f != nil {
				idle = max(idle, f.Last()) // its bytes go to the flow, not the session
			}
			if now-idle > int64(3*c.opt.Timeout) {
				c.connClose(k, conn, now)
			}
		}
		c.flowTick(now)
		c.forwardTick(now)
		for k, last := range c.shed {
			if now-last > int64(3*c.opt.Timeout) {
				delete(c.shed, k)
			}
		}
		c.mu.Unlock()
	}
}

// Flush ends every connection's pending exchanges now (tests, shutdown),
// after handling every event the kernel wrote before the call.
func (c *Capture) Flush() {
	c.waitReader()
	c.drain() // what the reader has taken from the ring first
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, conn := range c.conns {
		c.connClose(k, conn, now)
	}
	for _, s := range c.guard.Expire(math.MaxInt64) { // no verdict will come
		c.emit(s)
	}
}

// Stats sums the kernel-side counters: events, ring buffer drops, messages
// filtered in kernel, messages outside the scope (after Close: at Close).
func (c *Capture) Stats() (map[string]uint64, error) {
	if c.final != nil {
		return c.final, nil
	}
	out := map[string]uint64{}
	for i, name := range []string{"events", "drop_ringbuf", "drop_filter", "drop_scope", "handoffs", "handoffs_confirmed", "handoffs_refuted", "nonl7_sockets", "drop_storage", "handoff_claims", "handoff_items", "body_only", "tls_events", "tls_no_socket", "body_tail", "ring_wakes"} {
		var per []uint64
		if err := c.objs.Stats.Lookup(uint32(i), &per); err != nil {
			return nil, err
		}
		for _, v := range per {
			out[name] += v
		}
	}
	out["tls_files_attached"], out["tls_files_failed"], out["tls_uprobe_links"] = c.TLSStats()
	return out, nil
}

// ShedStats returns the connections shed over the span budget and the
// events of theirs dropped.
func (c *Capture) ShedStats() (conns, events uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ShedConns, c.ShedEvents
}

// Close detaches, drains and flushes.
func (c *Capture) Close() error {
	c.closeLinks()
	if c.rd != nil {
		// Let the reader drain what the kernel already wrote.
		for i := 0; i < 100 && c.rd.AvailableBytes() > 0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		c.rd.Close()
		close(c.done)
		c.wg.Wait() // the Go tracker too: no uprobe is added after this
		c.Flush()
		c.rd = nil
	}
	c.closeLinks()         // uprobes attached while draining
	c.final, _ = c.Stats() // what Stats returns from now on
	return c.objs.Close()
}

// ensureTracefs mounts tracefs when neither it nor debugfs is mounted: the
// tracepoint ids are read from it.
func ensureTracefs() error {
	for _, d := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(d); err == nil {
			return nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mounting tracefs on /sys/kernel/tracing: %w", err)
	}
	return nil
}

// Pending is the number of bytes waiting in the ring buffer.
func (c *Capture) Pending() int {
	if c.rd == nil {
		return 0
	}
	return c.rd.AvailableBytes()
}

func l4Of(udp bool) span.L4Protocol {
	if udp {
		return span.L4UDP
	}
	return span.L4TCP
}
