// Go crypto/tls plaintext (docs/tls-go.md): uprobes on the
// entry and on every RET instruction of (*crypto/tls.Conn).Write and Read,
// attached per executable by collector/ebpf/gotls.go with offsets from
// collector/gotls. Never uretprobes: they rewrite the return address on the
// goroutine's stack, which the Go runtime may move.
//
// Go's register ABI (Go 1.17+, amd64): at entry the receiver *Conn is in
// RAX and b's pointer in RBX; at a RET n is in RAX. The running goroutine
// is in R14 at both and at every syscall it makes, so a call is keyed by
// goroutine (maps/gotls_calls.h), and a socket syscall of that goroutine
// while the call runs records its socket and TCP sequence number into the
// call and sends no event (ciphertext), as tls.h does for a thread.
//
// Which socket: the one a syscall of the call touched; else the one the
// Conn used last (tls.h tls_conns); else the one its fields lead to
// (conn, a net.Conn holding a *net.TCPConn -> fd *netFD -> pfd.Sysfd; the
// offsets come in the attach cookie, GOTLS_COOKIE_*). Which sequence
// number: a Write's first write(2). A Read's is its record's: when the Conn
// holds no plaintext left over (tls.Conn.input), the record it decrypts
// begins at the socket's copied_seq less the ciphertext crypto/tls read
// ahead and has not decrypted (tls.Conn.rawInput), both read at entry (one
// read(2) often brings several records: grpc-go, a TLS 1.3 Finished with
// the first request); a Read of left-over plaintext takes its record's,
// the Conn's last (maps/gotls_reads.h). Without those offsets (a stripped
// binary of a Go version collector/gotls has no table for): the Read's
// first read(2), else the Conn's last.
//
// When: a Read's plaintext goes out at its RET (the bytes are there); a
// Write's at the entry of its first write(2), len(b) from the Write's
// entry (crypto/tls writes all of b or fails), not at its RET. Go's
// net/http client writes a request on one goroutine (writeLoop) and reads
// the response on another (readLoop): the writer's thread may run the
// Write's RET after the reader has read the answer, so an event at the RET
// can reach user space after the response's, and the session pairs each
// request of a kept-alive connection with the next response. At the write
// syscall's entry no answer can have come yet. A Write that made no
// syscall goes out at its RET, as before.
#pragma once
#include "tls.h"
#include "goroutine.h"
#include "maps/gotls_calls.h"
#include "maps/gotls_reads.h"

// Attach cookie: offsets of the layout (collector/gotls.Layout), one byte each.
#define GOTLS_COOKIE_DATA(c) ((c) & 0xff)          // tls.Conn -> conn's data word
#define GOTLS_COOKIE_FD(c) (((c) >> 8) & 0xff)     // net.TCPConn -> *netFD
#define GOTLS_COOKIE_SYSFD(c) (((c) >> 16) & 0xff) // netFD -> Sysfd
#define GOTLS_COOKIE_RAW(c) (((c) >> 24) & 0xffff)  // tls.Conn.rawInput (0: unknown)
#define GOTLS_COOKIE_INPUT(c) (((c) >> 40) & 0xffff) // tls.Conn.input (0: unknown)
// Offsets inside bytes.Buffer and bytes.Reader (collector/gotls).
#define GO_BUFFER_LEN 8
#define GO_BUFFER_OFF 24
#define GO_READER_LEN 8
#define GO_READER_I 24

// Defined in socket.bpf.c.
static __always_inline struct sock *fd_to_sock(struct task_struct *task, long fd);

// gotls_chain_sk follows the Conn's fields to its TCP socket, or returns 0.
static __always_inline __u64 gotls_chain_sk(struct task_struct *task, __u64 conn, __u64 cookie)
{
	__u64 tcp = 0, nfd = 0;
	long fd = -1;
	if (bpf_probe_read_user(&tcp, sizeof(tcp), (void *)(conn + GOTLS_COOKIE_DATA(cookie))) || !tcp)
		return 0;
	if (bpf_probe_read_user(&nfd, sizeof(nfd), (void *)(tcp + GOTLS_COOKIE_FD(cookie))) || !nfd)
		return 0;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(nfd + GOTLS_COOKIE_SYSFD(cookie))))
		return 0;
	struct sock *sk = fd_to_sock(task, fd);
	__u32 netns = 0;
	if (!sk || inet_proto(sk, &netns) != IPPROTO_TCP)
		return 0;
	return (__u64)sk;
}

// gotls_record_seq sets the sequence number of the record a Read is about
// to decrypt (see the top), unless the Conn holds left-over plaintext or
// the offsets are unknown.
static __always_inline void gotls_record_seq(struct gotls_call *c, __u64 cookie)
{
	__u64 raw = GOTLS_COOKIE_RAW(cookie), in = GOTLS_COOKIE_INPUT(cookie), conn = c->call.conn;
	if (!raw || !in || !c->chain_sk)
		return;
	__s64 w[2] = {};
	if (bpf_probe_read_user(&w[0], 8, (void *)(conn + in + GO_READER_LEN)) ||
	    bpf_probe_read_user(&w[1], 8, (void *)(conn + in + GO_READER_I)))
		return;
	if (w[0] - w[1] > 0)
		return; // left-over plaintext: its record's number (gotls_reads)
	if (bpf_probe_read_user(&w[0], 8, (void *)(conn + raw + GO_BUFFER_LEN)) ||
	    bpf_probe_read_user(&w[1], 8, (void *)(conn + raw + GO_BUFFER_OFF)))
		return;
	struct tcp_sock *tp = kcast(c->chain_sk, struct tcp_sock);
	c->call.seq = tp->copied_seq - (__u32)(w[0] - w[1]);
	c->call.seq_set = 1;
}

// gotls_key is gotls_calls' key: the calling goroutine's g address, not its
// goid (goroutine.h goroutine_key): a call's entry, syscalls and return run
// on the one goroutine, and its return deletes the entry, so a g reused by
// a later goroutine finds none; no goid read per call.
static __always_inline __u64 gotls_key(__u32 tgid, __u64 g)
{
	return GOROUTINE_KEY | ((g ^ ((__u64)tgid << 40)) & ~GOROUTINE_KEY);
}

// gotls_enter: a Write (dir DIR_EGRESS) or Read began.
static __always_inline int gotls_enter(struct pt_regs *ctx, __u8 dir)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	__u64 g = ctx->r14, conn = ctx->ax;
	if (tgid == self_tgid || !g || !conn || tls_excluded(task))
		return 0;
	struct gotls_call c = {};
	c.call.conn = conn;
	c.call.buf = ctx->bx;
	c.len = ctx->cx; // b's length (RBX, RCX, RDI: b's pointer, length, capacity)
	c.call.ts = dir == DIR_EGRESS ? bpf_ktime_get_ns() : 0;
	c.call.dir = dir;
	c.call.lib = TLS_LIB_GO;
	c.call.active = 1;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	// A Conn whose fields led to its socket before (tls_conns, chained)
	// still leads there while that socket lives (its close forgets the
	// entry; the tuple tells a socket reallocated at the address): one
	// lookup instead of three user-memory reads and the fd walk.
	struct tls_conn_key ck = {.conn = conn, .tgid = tgid};
	struct tls_sock *known = bpf_map_lookup_elem(&tls_conns, &ck);
	if (known && known->chained && sock_tuple(kcast(known->sk, struct sock)) == known->tuple)
		c.chain_sk = known->sk;
	else
		c.chain_sk = gotls_chain_sk(task, conn, cookie);
	if (dir == DIR_INGRESS)
		gotls_record_seq(&c, cookie);
	__u64 key = gotls_key(tgid, g);
	tls_proc_mark(tgid, TLS_PROC_CALLS); // before the call: gotls_syscall
	bpf_map_update_elem(&gotls_calls, &key, &c, BPF_ANY);
	return 0;
}

// gotls_missed reports whether a read(2) outside any Go TLS call is on a
// socket a crypto/tls Conn of this Go process uses: crypto/tls reads only
// inside Read, so this Read began before the probes were attached (its
// goroutine was blocked in it: every kept-alive connection of a running
// program has one) and its plaintext is lost.
static __always_inline int gotls_missed(__u32 tgid, struct sock *sk)
{
	__u64 skp = (__u64)sk;
	struct tls_conn_key *ck = bpf_map_lookup_elem(&tls_socks, &skp);
	return ck && ck->tgid == tgid && bpf_map_lookup_elem(&go_procs, &tgid);
}

// gotls_syscall is called by a socket syscall's entry (socket.bpf.c
// enter_io): inside a Go TLS call of the current goroutine it records the
// TCP socket into the call (the first one, and the sequence number of its
// first syscall in the call's direction) and returns 1: the syscall moves
// ciphertext and sends no event. A read outside any call on a Go TLS
// Conn's socket (gotls_missed) returns 2: its ciphertext goes to user space
// whatever the socket's L7 verdict, which tells the session the Read's
// plaintext was lost (collector/ebpf tls.go, session.Unread). Both lookups
// are made only in a process the probes marked (tlsprocs.h): a call's
// entry marks it before the call is in gotls_calls, a socket's mapping
// before it is in tls_socks, so a process not marked has neither. a: the
// thread's storage (NULL: none yet), where the marks are cached.
static __always_inline int gotls_syscall(struct task_struct *task, struct active_io *a, struct sock *sk, __u8 dir)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&gotls_on, &zero);
	if (!on || !*on)
		return 0;
	if ((sk->__sk_common.skc_family != AF_INET && sk->__sk_common.skc_family != AF_INET6) ||
	    sk->sk_protocol != IPPROTO_TCP)
		return 0; // before the lookups: a Unix socket's syscall costs none
	__u32 tgid = task->tgid;
	__u8 marks = tls_proc_bits(a, tgid);
	if (!(marks & TLS_PROC_CALLS) && !(dir == DIR_INGRESS && (marks & TLS_PROC_SOCKS)))
		return 0; // no Go TLS call, no TLS socket in this process
	__u64 g = current_g(task);
	if (!g)
		return 0;
	__u64 key = gotls_key(tgid, g);
	struct gotls_call *c = (marks & TLS_PROC_CALLS) ? bpf_map_lookup_elem(&gotls_calls, &key) : NULL;
	if (!c)
		return dir == DIR_INGRESS && (marks & TLS_PROC_SOCKS) && gotls_missed(tgid, sk) ? 2 : 0;
	if (c->call.sk && c->call.sk != (__u64)sk)
		return 1;
	c->call.sk = (__u64)sk;
	if (dir == c->call.dir && !c->call.seq_set) {
		struct tcp_sock *tp = kcast(sk, struct tcp_sock);
		c->call.seq = dir == DIR_EGRESS ? tp->write_seq : tp->copied_seq;
		c->call.seq_set = 1;
	}
	if (dir == DIR_EGRESS && c->call.dir == DIR_EGRESS && !c->sent && c->len > 0) {
		c->sent = 1; // before the bytes leave: see the top
		tls_emit(task, NULL, &c->call, c->call.buf, c->len, c->chain_sk);
	}
	return 1;
}

// gotls_return: one of the function's RETs; RAX holds n.
static __always_inline int gotls_return(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = gotls_key(tgid, ctx->r14);
	struct gotls_call *p = bpf_map_lookup_elem(&gotls_calls, &key);
	if (!p)
		return 0;
	struct gotls_call c = *p;
	bpf_map_delete_elem(&gotls_calls, &key);
	if (c.sent)
		return 0; // went out at its first write(2)
	long n = ctx->ax;
	struct tls_conn_key ck = {.conn = c.call.conn, .tgid = tgid};
	if (c.call.dir == DIR_INGRESS) {
		if (c.call.seq_set) {
			bpf_map_update_elem(&gotls_reads, &ck, &c.call.seq, BPF_ANY);
		} else {
			__u32 *last = bpf_map_lookup_elem(&gotls_reads, &ck);
			if (last) {
				c.call.seq = *last;
				c.call.seq_set = 1;
			}
		}
	}
	if (!c.call.sk && c.chain_sk && !bpf_map_lookup_elem(&tls_conns, &ck))
		c.call.sk = c.chain_sk;
	return tls_emit(bpf_get_current_task_btf(), NULL, &c.call, c.call.buf, n > 0 ? n : 0, c.chain_sk);
}
