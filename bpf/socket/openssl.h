// OpenSSL 1.1.1 and 3.x plaintext (tls.h, docs/tls.md): uprobes at the
// entry and return of SSL_write, SSL_read, SSL_write_ex and SSL_read_ex
// (and the entry of SSL_set_fd: a connection object's socket), in
// shared libssl and in executables that export them (node). Attached per
// library file by user space (collector/ebpf/tls.go). Return probes are
// fine here: C code, the stack does not move.
//
// int SSL_write(SSL *s, const void *buf, int num)         -> bytes, or <= 0
// int SSL_read(SSL *s, void *buf, int num)                -> bytes, or <= 0
// int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)  -> 1 on success
// int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes)       -> 1 on success
#pragma once
#include "tls.h"

// ossl_egress_min: a record carrying the first of num plaintext bytes is at
// least min(num, 512) + 5 bytes long (512: the smallest max_fragment_length),
// so a write after fewer bytes than that starts the data (tls_syscall).
static __always_inline void ossl_egress_min(struct tls_call *call, __s64 num)
{
	if (!call)
		return;
	if (num < 0)
		num = 0;
	call->egress_min = (num < 512 ? (__u32)num : 512) + 5;
}

SEC("uprobe/SSL_write")
int ossl_write(struct pt_regs *ctx)
{
	ossl_egress_min(tls_enter(ctx->di, ctx->si, 0, DIR_EGRESS, TLS_LIB_OPENSSL), (int)ctx->dx);
	return 0;
}

SEC("uprobe/SSL_read")
int ossl_read(struct pt_regs *ctx) { tls_enter(ctx->di, ctx->si, 0, DIR_INGRESS, TLS_LIB_OPENSSL); return 0; }

// ossl_write_ex_enter starts an SSL_write_ex call (num: its length).
static __always_inline struct tls_call *ossl_write_ex_enter(struct pt_regs *ctx, __u64 num)
{
	struct tls_call *call = tls_enter(ctx->di, ctx->si, ctx->cx, DIR_EGRESS, TLS_LIB_OPENSSL);
	ossl_egress_min(call, num > 512 ? 512 : (__s64)num);
	return call;
}

SEC("uprobe/SSL_write_ex")
int ossl_write_ex(struct pt_regs *ctx)
{
	ossl_write_ex_enter(ctx, ctx->dx);
	return 0;
}

// OSSL_WHOLE_MAX: in OpenSSL 1.1.0 to 3.1 a write is cut into records only
// at max_send_fragment (at least 512; split_send_fragment only with a
// pipeline-capable cipher, and then into pipelines that together hold the
// whole write), so an SSL_write_ex of at most this many bytes makes one
// record and succeeds only when all of it is written, even with
// SSL_MODE_ENABLE_PARTIAL_WRITE. Not so from 3.2 on (its record layer cuts
// at split_send_fragment, which may be set to any size).
#define OSSL_WHOLE_MAX 512

// ossl_write_exw is ossl_write_ex for a library whose successful
// SSL_write_ex of at most OSSL_WHOLE_MAX bytes writes them all (OpenSSL
// 1.1.0 to 3.1, by its symbol versions: collector/tlslib): the call's count
// is then known at entry, and its return skips the user read of *written
// (~180 ns of a return here, docs/tls.md).
SEC("uprobe/SSL_write_ex")
int ossl_write_exw(struct pt_regs *ctx)
{
	__u64 num = ctx->dx;
	struct tls_call *call = ossl_write_ex_enter(ctx, num);
	if (call && num <= OSSL_WHOLE_MAX)
		call->whole = num + 1;
	return 0;
}

SEC("uprobe/SSL_read_ex")
int ossl_read_ex(struct pt_regs *ctx) { tls_enter(ctx->di, ctx->si, ctx->cx, DIR_INGRESS, TLS_LIB_OPENSSL); return 0; }

// ossl_set_fd: SSL_set_fd(SSL *s, int fd) gives a connection object its
// socket (a socket BIO: nginx, Python's ssl, Ruby) before its handshake.
// The object is mapped to the socket then (tls_map), so that its first
// read call, when the handshake's reads already took the request's record
// (OpenSSL's read_ahead: nginx), has its socket without the thread's last
// read (tls_sock_of), which may be 10 ms old on a busy machine (the request
// was lost: issue 25) or another connection's. One uprobe per connection.
SEC("uprobe/SSL_set_fd")
int ossl_set_fd(struct pt_regs *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->tgid == self_tgid || tls_excluded(task))
		return 0;
	struct sock *sk = fd_to_sock(task, (int)ctx->si);
	__u32 netns = 0;
	if (!sk || inet_proto(sk, &netns) != IPPROTO_TCP)
		return 0;
	struct tls_conn_key ck = {.conn = ctx->di, .tgid = task->tgid};
	tls_map(&ck, (__u64)sk, 0);
	return 0;
}

// ossl_ret: SSL_write / SSL_read returned their byte count.
SEC("uretprobe/SSL_rw")
int ossl_ret(struct pt_regs *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct active_io *a = tls_leave(task);
	if (!a)
		return 0;
	int ret = (int)ctx->ax;
	return tls_emit(task, a, &a->tls, a->tls.buf, ret > 0 ? ret : 0, 0);
}

// ossl_ret_ex: SSL_write_ex / SSL_read_ex returned 1 and stored the count
// (known at entry when whole is set: ossl_write_exw).
SEC("uretprobe/SSL_rw_ex")
int ossl_ret_ex(struct pt_regs *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct active_io *a = tls_leave(task);
	if (!a)
		return 0;
	__u64 n = 0;
	if ((int)ctx->ax == 1 && a->tls.whole)
		n = a->tls.whole - 1;
	else if ((int)ctx->ax == 1 && a->tls.lenp)
		bpf_probe_read_user(&n, sizeof(n), (void *)a->tls.lenp);
	return tls_emit(task, a, &a->tls, a->tls.buf, n, 0);
}
