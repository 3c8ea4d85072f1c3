// SPDX-License-Identifier: GPL-2.0
// Socket syscall capture: every read/write-family syscall on an inet socket
// becomes one struct event (metadata, TCP sequence number of the first byte,
// request context id (causality.h), the first bytes of payload) on a ring buffer.
// Only tracepoints: fentry/fexit and kprobes are not available here.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "event.h"
#include "maps/events.h"
#include "maps/scratch.h"
#include "maps/active.h"
#include "wait.h"
#include "maps/scope.h"
#include "maps/stats.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define DIR_CLOSE 2
#define DIR_ACCEPTED 3  // the socket was accepted: this process is the server
#define DIR_CONNECTED 4 // the socket was connected: this process is the client

// Set by the loader before load.
const volatile __u32 payload_cap = 1024; // bytes of payload per message, <= MAX_PAYLOAD-1
const volatile __u32 self_tgid = 0;      // the collector itself is never traced
const volatile __u8 scope_enabled = 0;   // only network namespaces in netns_scope
const volatile __s64 realtime_offset_ns = 0; // CLOCK_REALTIME minus CLOCK_MONOTONIC at load (handoff.h)

// Kernel structures are read with plain loads through BTF-typed pointers
// (the task from bpf_get_current_task_btf, others cast with the
// bpf_rdonly_cast kfunc): the verifier turns them into fault-safe loads, a
// few ns each, where bpf_probe_read_kernel (BPF_CORE_READ) costs a helper
// call per field.
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define kcast(ptr, type) ((type *)bpf_rdonly_cast((const void *)(ptr), bpf_core_type_id_kernel(type)))

#include "causality.h"
#include "l7.h"
#include "bodies.h"

// fd_sock returns the socket behind fd of task (the current one), or NULL:
// task->files->fdt->fd[fd], an S_IFSOCK inode, file->private_data->sk; *ino:
// the socket's sockfs inode number (another socket at the same struct sock
// address has another).
static __always_inline struct sock *fd_sock(struct task_struct *task, long fd, __u64 *ino)
{
	struct fdtable *fdt = task->files->fdt;
	if (fd < 0 || (unsigned long)fd >= fdt->max_fds)
		return NULL;
	// The fd table is an array of pointers, which BTF does not type: its
	// slot is read through a struct whose first member is a struct file
	// pointer (struct kiocb's ki_filp), one fault-safe load instead of a
	// bpf_probe_read_kernel call.
	__u64 slot = (__u64)fdt->fd + (__u64)fd * sizeof(struct file *);
	struct file *f = kcast(slot, struct kiocb)->ki_filp;
	if (!f)
		return NULL;
	struct inode *inode = f->f_inode;
	if ((inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	*ino = inode->i_ino;
	struct socket *sock = kcast(f->private_data, struct socket);
	return kcast(sock->sk, struct sock);
}

// fd_to_sock is fd_sock without the inode.
static __always_inline struct sock *fd_to_sock(struct task_struct *task, long fd)
{
	__u64 ino;
	return fd_sock(task, fd, &ino);
}

// inet_proto returns the socket's protocol (TCP/UDP) if it is an inet
// socket in scope, else 0.
static __always_inline __u16 inet_proto(struct sock *sk, __u32 *netns)
{
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u16 proto = sk->sk_protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	*netns = sk->__sk_common.skc_net.net->ns.inum;
	if (scope_enabled && !bpf_map_lookup_elem(&netns_scope, netns)) {
		count(STAT_DROP_SCOPE);
		return 0;
	}
	return proto;
}

#include "ring.h"
#include "openssl.h"
#include "gotls.h"

// enter_io remembers what an exit needs. vectored: buf is a struct iovec
// array; msg: a struct user_msghdr; mmsg: a struct mmsghdr array. A socket
// marked not L7 costs the fd walk and at most one map lookup (l7_skip) and
// nothing more.
static __always_inline int enter_io_m(long fd, __u64 buf, __u64 buflen, __u8 dir, __u8 vectored, __u8 msg, __u8 mmsg)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->tgid == self_tgid)
		return 0;
	__u64 ino = 0;
	struct sock *sk = fd_sock(task, fd, &ino);
	if (!sk)
		return 0;
	// The thread's storage, looked up once for the TLS checks, the
	// socket's verdict and the syscall (created below when missing).
	struct active_io *a = bpf_task_storage_get(&active, task, 0, 0);
	if (tls_syscall(a, sk, dir, buf, buflen, vectored, msg))
		return 0; // ciphertext of a TLS call: its plaintext goes out (tls.h)
	int gotls = gotls_syscall(task, a, sk, dir);
	if (gotls == 1)
		return 0; // ciphertext of a Go crypto/tls call (gotls.h)
	__u8 verdict = L7_NO;
	if (gotls != 2 && l7_skip(a, sk, ino, &verdict))
		return 0; // marked not L7 (l7.h); a Go TLS read missed goes out (gotls.h)
	if (gotls != 2 && verdict == L7_OPAQUE && opaque_read(a, sk)) {
		l7_forget(a, (__u64)sk); // now L7_NO: read again at the next syscall
		return 0; // TLS whose plaintext this thread reads (opaque.h)
	}
	__u32 netns = 0;
	__u16 proto = inet_proto(sk, &netns);
	if (!proto)
		return 0;
	if (!a)
		a = bpf_task_storage_get(&active, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a) {
		// Out of memory, or nested in another task-storage user on this CPU.
		count(STAT_DROP_STORAGE);
		return 0;
	}
	a->l7 = verdict;
	if (dir == DIR_EGRESS) // an ingress event takes its exit's time (exit_io)
		a->ts = bpf_ktime_get_ns();
	a->buf = buf;
	a->buflen = buflen;
	a->sk = (__u64)sk;
	a->netns = netns;
	a->l4 = proto;
	a->dir = dir;
	a->vectored = vectored;
	a->msg = msg;
	a->mmsg = mmsg;
	a->seq = 0;
	// A TCP write's number is its entry's; a read's is taken at its exit
	// (read_seq), but for recvmmsg's, whose bytes span several messages.
	if (proto == IPPROTO_TCP && (dir == DIR_EGRESS || mmsg)) {
		struct tcp_sock *tp = kcast(sk, struct tcp_sock);
		a->seq = dir == DIR_EGRESS ? tp->write_seq : tp->copied_seq;
	}
	a->pending = 1;
	return 0;
}

static __always_inline int enter_io(long fd, __u64 buf, __u64 buflen, __u8 dir, __u8 vectored, __u8 msg)
{
	return enter_io_m(fd, buf, buflen, dir, vectored, msg, 0);
}

// read_seq: the TCP sequence number of the first byte a read of ret > 0
// bytes returned, taken at its exit: copied_seq less the bytes it copied.
// The entry's copied_seq is not it when another thread's read on the
// socket took bytes while this one blocked (issue 29, fifteenth round).
// A read that took the peer's FIN with its last bytes moved copied_seq
// one more (tcp_recvmsg counts the FIN): the FIN came (SOCK_DONE, set by
// tcp_fin) and nothing is left unread. A ULP (kernel TLS) moves
// copied_seq by whole records as it parses them, not by this read: 0, no
// number.
static __always_inline __u32 read_seq(struct sock *sk, long ret)
{
	struct tcp_sock *tp = kcast(sk, struct tcp_sock);
	if (tp->inet_conn.icsk_ulp_ops)
		return 0;
	__u32 copied = tp->copied_seq;
	__u32 back = (__u32)ret;
	if ((sk->__sk_common.skc_flags & (1UL << SOCK_DONE)) && copied == tp->rcv_nxt)
		back++;
	return copied - back;
}

// past_copy is EVENT_PAST_COPY when the syscall moved bytes past its copy
// (cap of len, after skip) on a TCP socket read as L7: user space may tell
// a body's range from it, and its record wakes the reader (maps/events.h).
static __always_inline __u8 past_copy(struct active_io *a, __u32 cap, __u64 len, __u32 skip)
{
	return a->l7 == L7_YES && a->l4 == IPPROTO_TCP && cap > 0 && len > skip + cap ? EVENT_PAST_COPY : 0;
}

static __always_inline int exit_io(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	// Read in place, not copied: only this thread writes its storage,
	// and nothing below but thread_key's cache does.
	struct active_io *a = bpf_task_storage_get(&active, task, 0, 0);
	if (!a || !a->pending)
		return 0;
	a->pending = 0;
	if (ret <= 0) {
		count(STAT_DROP_FILTER);
		return 0;
	}
	__u64 id = (__u64)task->tgid << 32 | (__u32)task->pid;
	// The event's time, which causality takes too: a write's is its
	// entry's (it reads the clock once, at its entry: issue 29,
	// sixteenth round); a read's, its exit's.
	__u64 now = a->dir == DIR_EGRESS ? a->ts : bpf_ktime_get_ns();
	struct sock *sk = kcast(a->sk, struct sock);
	if (a->dir == DIR_INGRESS && a->l4 == IPPROTO_TCP && !a->mmsg)
		a->seq = read_seq(sk, ret); // before body_skip and the event
	__u8 flags = wait_flags(a);
	__u8 cont = 0;
	// An opaque socket's flights take no part in request contexts: a TLS
	// server writes its session tickets after reading the request, which
	// would end the request on its thread (opaque.h).
	__u8 made = 0, gor = 0;
	__u64 trace_id = a->l7 == L7_OPAQUE ? 0 : causality(id, a->sk, a->dir, now, &cont, a, &made, &gor);
	if (made)
		l7_forget(a, a->sk); // its state had gone (LRU): the verdict copied is not the map's (l7.h)
	if (gor && trace_id)
		trace_id |= GOROUTINE_BIT;

	__u64 ptr = a->buf, plen = a->buflen;
	__u8 vectored = a->vectored;
	if (a->msg) {
		struct user_msghdr mh = {};
		bpf_probe_read_user(&mh, sizeof(mh), (void *)a->buf);
		ptr = (__u64)mh.msg_iov;
		vectored = mh.msg_iovlen > 0;
		if (!vectored)
			plen = 0;
	}
	if (vectored) {
		struct iovec iov = {};
		bpf_probe_read_user(&iov, sizeof(iov), (void *)ptr);
		ptr = (__u64)iov.iov_base;
		plen = iov.iov_len;
	}
	__u64 len = ret;
	if (a->mmsg) {
		// *mmsg return the number of messages; the first one's length is
		// its msg_len, right after its msghdr.
		__u32 ml = 0;
		bpf_probe_read_user(&ml, sizeof(ml), (void *)(a->buf + sizeof(struct user_msghdr)));
		len = ml;
		if (len == 0) {
			count(STAT_DROP_FILTER);
			return 0;
		}
	}
	__u32 cap = payload_cap, skip = 0;
	if (cont && a->l7 == L7_YES && a->l4 == IPPROTO_TCP) {
		__u64 in = body_skip(a->sk, a->dir, a->seq, len);
		if (in >= len) {
			cap = 0; // inside a body user space counts by length (bodies.h)
			count(STAT_BODY_ONLY);
		} else if (in > 0 && in < plen) {
			// The body ends in the first buffer: read from its end
			// (the next message's header), telling how many bytes
			// came before (event.skip).
			skip = in;
			ptr += in;
			plen -= in;
			count(STAT_BODY_TAIL);
		}
	}
	cap = payload_clamp(cap, len - skip < plen ? len - skip : plen);
	cap = opaque_cap(a->l7, cap); // TLS not read: the record header (opaque.h)
	cap &= MAX_PAYLOAD - 1; // re-bound here: the verifier loses the helper's bound
	flags |= past_copy(a, cap, len, skip);

	// A socket's first messages (L7_UNKNOWN: l7_verdict reads their
	// bytes) go through the scratch event: keeping the verdict out of the
	// ring path keeps the verifier's work down.
	if (cap <= RING_DIRECT_MAX && a->l7 != L7_UNKNOWN) {
		if (ring_emit(task, a->sk, sk, id, now, trace_id, a->seq, len, cap, a->dir, a->l4, a->netns, TLS_LIB_NONE,
			      flags, ptr, skip)) {
			count(STAT_DROP_RINGBUF);
			return 0;
		}
	} else {
		__u32 zero = 0;
		struct event *e = bpf_map_lookup_elem(&scratch, &zero);
		if (!e)
			return 0;
		fill_event(e, task, a->sk, sk, id, now, trace_id, a->seq, len, cap, a->dir, a->l4, a->netns, TLS_LIB_NONE, flags);
		e->skip = skip;
		if (cap > 0)
			bpf_probe_read_user(e->data, cap, (void *)ptr);
		if (a->l7 == L7_UNKNOWN) {
			l7_verdict(a, sk, e->data, cap, len, e->l4);
			e->flags |= past_copy(a, cap, len, skip); // the verdict may have made it L7
		}
		if (bpf_ringbuf_output(&events, e, EVENT_HDR_SIZE + cap, rb_flags(e->flags))) {
			count(STAT_DROP_RINGBUF);
			return 0;
		}
	}
	wait_sent(a, flags);
	count(STAT_EVENTS);
	return 0;
}

#define ARG(n) (ctx->args[n])

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx) { return enter_io(ARG(0), ARG(1), ARG(2), DIR_EGRESS, 0, 0); }
SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx) { return enter_io(ARG(0), ARG(1), ARG(2), DIR_INGRESS, 0, 0); }
SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx) { return enter_io(ARG(0), ARG(1), ARG(2), DIR_EGRESS, 0, 0); }
SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
// MSG_PEEK (uapi linux/socket.h, not in BTF): a read that leaves the bytes
// in the socket, which its next read returns again at the same sequence
// number; it sends no event (its bytes twice would be two messages).
#define MSG_PEEK 2
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	if (ARG(3) & MSG_PEEK)
		return 0;
	return enter_io(ARG(0), ARG(1), ARG(2), DIR_INGRESS, 0, 0);
}
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx) { return enter_io(ARG(0), ARG(1), 0, DIR_EGRESS, 1, 0); }
SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx) { return enter_io(ARG(0), ARG(1), 0, DIR_INGRESS, 1, 0); }
SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx) { return enter_io(ARG(0), ARG(1), 0, DIR_EGRESS, 0, 1); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (ARG(2) & MSG_PEEK)
		return 0;
	return enter_io(ARG(0), ARG(1), 0, DIR_INGRESS, 0, 1);
}
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
// sendmmsg/recvmmsg: the first message (struct mmsghdr starts with its msghdr).
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(struct trace_event_raw_sys_enter *ctx) { return enter_io_m(ARG(0), ARG(1), 0, DIR_EGRESS, 0, 1, 1); }
SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int exit_sendmmsg(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_recvmmsg")
int enter_recvmmsg(struct trace_event_raw_sys_enter *ctx) { return enter_io_m(ARG(0), ARG(1), 0, DIR_INGRESS, 0, 1, 1); }
SEC("tracepoint/syscalls/sys_exit_recvmmsg")
int exit_recvmmsg(struct trace_event_raw_sys_exit *ctx) { return exit_io(ctx->ret); }

// lifecycle emits a payload-less event about a TCP socket: closed, accepted
// or connected (the last two give user space the connection's role).
static __always_inline int lifecycle(long fd, __u8 dir)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->tgid == self_tgid)
		return 0;
	__u64 id = (__u64)task->tgid << 32 | (__u32)task->pid;
	struct sock *sk = fd_to_sock(task, fd);
	if (!sk)
		return 0;
	__u32 netns = 0;
	if (inet_proto(sk, &netns) != IPPROTO_TCP)
		return 0;
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->ts = bpf_ktime_get_ns();
	e->sock_id = (__u64)sk;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->dir = dir;
	e->len = 0;
	e->cap = 0;
	e->netns = netns;
	e->syscall_trace_id = 0;
	e->tcp_seq = 0;
	e->l4 = IPPROTO_TCP;
	// Looked up only for the TCP sockets in scope that pass above.
	struct active_io *a = bpf_task_storage_get(&active, task, 0, 0);
	e->flags = wait_flags(a);
	fill_addrs(e, sk);
	fill_comm(e, task);
	if (dir == DIR_CLOSE) {
		sock_closed(e->sock_id);
		bodies_closed(e->sock_id);
		tls_sock_closed(e->sock_id);
	} else {
		set_role(e->sock_id, dir == DIR_ACCEPTED ? ROLE_SERVER : ROLE_CLIENT);
		if (dir == DIR_CONNECTED)
			node_connect(e->sock_id);
	}
	if (bpf_ringbuf_output(&events, e, EVENT_HDR_SIZE, rb_flags(0)))
		count(STAT_DROP_RINGBUF);
	else
		wait_sent(a, e->flags);
	return 0;
}

// close: tell user space the connection ended (flush or time out pending).
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx) { return lifecycle(ARG(0), DIR_CLOSE); }

// accept/accept4 return the new connection's fd: this process serves it.
SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) { return ctx->ret >= 0 ? lifecycle(ctx->ret, DIR_ACCEPTED) : 0; }
SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) { return ctx->ret >= 0 ? lifecycle(ctx->ret, DIR_ACCEPTED) : 0; }

// connect: remember the fd at entry (maps/active.h); at exit (connected or
// in progress) this process is the client.

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->tgid == self_tgid)
		return 0;
	// Only TCP sockets: most connects on a host are AF_UNIX, and the
	// thread's storage is created at its first kept syscall (~1-3 µs).
	struct sock *sk = fd_to_sock(task, ARG(0));
	if (!sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	struct active_io *a = bpf_task_storage_get(&active, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a) {
		count(STAT_DROP_STORAGE);
		return 0;
	}
	a->connect_fd = ARG(0);
	a->connecting = 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct active_io *a = bpf_task_storage_get(&active, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->connecting)
		return 0;
	a->connecting = 0;
	if (ctx->ret == 0 || ctx->ret == -115 /* EINPROGRESS */)
		lifecycle(a->connect_fd, DIR_CONNECTED);
	return 0;
}

// Event-loop waits (wait.h): one program for all of them.
SEC("tracepoint/syscalls/sys_enter_epoll_wait")
int enter_wait(struct trace_event_raw_sys_enter *ctx) { return wait_enter(); }

// sched_waking runs in the waker's context: the handoff of a request to a
// worker, and a worker's verdict (handoff.h).
SEC("tp_btf/sched_waking")
int BPF_PROG(on_waking, struct task_struct *p) { return waking(p); }

// Futex waits of threads holding a request: which wakes are a worker handing
// back a result (handoff.h).
SEC("tracepoint/syscalls/sys_enter_futex")
int enter_futex(struct trace_event_raw_sys_enter *ctx) { futex_enter(ARG(0), ARG(1), ARG(3)); return 0; }
SEC("tracepoint/syscalls/sys_exit_futex")
int exit_futex(struct trace_event_raw_sys_exit *ctx) { futex_exit(); return 0; }

// Go programs: a goroutine handing work to another over a channel
// (goroutine.h, handoff.h). Attached per executable by user space.
SEC("uprobe/runtime.send")
int go_runtime_send(struct pt_regs *ctx) { return go_send(ctx); }

// CPython's SimpleQueue (pyqueue.h), attached by address in _queue's
// method table.
SEC("uprobe/simplequeue_put")
int py_queue_put(struct pt_regs *ctx) { return py_put(ctx); }

SEC("uprobe/simplequeue_get")
int py_queue_get(struct pt_regs *ctx) { return py_get(); }

SEC("uretprobe/simplequeue_get")
int py_queue_got(struct pt_regs *ctx) { return py_got(ctx); }

// CPython asyncio's C tasks (asyncio.h), attached by address in _asyncio's
// tables: a task created, freed, and its steps (entered through the step
// wrapper or task_wakeup; one return probe for both).
SEC("uprobe/py_task_init")
int py_task_init(struct pt_regs *ctx) { return py_task_new(ctx); }

SEC("uprobe/py_task_dealloc")
int py_task_dealloc(struct pt_regs *ctx) { return py_task_free(ctx); }

SEC("uprobe/py_task_step")
int py_task_step_enter(struct pt_regs *ctx) { return py_task_step(ctx); }

SEC("uprobe/py_task_wakeup")
int py_task_wakeup(struct pt_regs *ctx) { return step_enter(ctx->di); }

SEC("uretprobe/py_task_step")
int py_task_step_exit(struct pt_regs *ctx) { return step_exit(); }

// Node.js event-loop turns (nodeasync.h), attached to the node executable's
// exported callback-scope functions: a scope opened for an AsyncWrap's
// callback (directly, or through AsyncWrap::MakeCallback and the
// Environment's constructor), and the scope's Close() (entry and return).
SEC("uprobe/node_scope_wrap")
int node_scope_wrap(struct pt_regs *ctx) { return scope_begin(ctx->di, ctx->si); }

SEC("uprobe/node_scope_env")
int node_scope_env(struct pt_regs *ctx)
{
	// Both registers read first: the verifier refuses a context load at a
	// computed offset.
	__u64 cx = ctx->cx, r8 = ctx->r8;
	return node_scope_env_begin(ctx->di, bpf_get_attach_cookie(ctx) == NODE_CTX_R8 ? r8 : cx);
}

SEC("uprobe/node_make_callback")
int node_make_callback(struct pt_regs *ctx) { return node_next_wrap(ctx->di); }

SEC("uprobe/node_scope_close")
int node_close(struct pt_regs *ctx) { return node_scope_close(ctx->di); }

SEC("uretprobe/node_scope_close")
int node_closed(struct pt_regs *ctx) { return node_scope_closed(); }

// Go crypto/tls (gotls.h), attached per executable by user space at the
// entry of (*tls.Conn).Write and Read and at each of their RET instructions.
SEC("uprobe/gotls_write")
int gotls_write(struct pt_regs *ctx) { return gotls_enter(ctx, DIR_EGRESS); }

SEC("uprobe/gotls_read")
int gotls_read(struct pt_regs *ctx) { return gotls_enter(ctx, DIR_INGRESS); }

SEC("uprobe/gotls_ret")
int gotls_ret(struct pt_regs *ctx) { return gotls_return(ctx); }

// A process's end and its exec (procs.h).
#include "procs.h"

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_process_exit, struct task_struct *p) { return proc_exit(p); }

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_process_exec, struct task_struct *p, pid_t old_pid) { return proc_exec(p, old_pid); }
