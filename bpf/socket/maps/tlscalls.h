// TLS calls in flight (bpf/socket/tls.h): what a TLS library call's entry
// saw, and the socket its syscalls touched meanwhile. Kept in the calling
// thread's syscall storage (maps/active.h, member tls), not a map of its
// own: a socket syscall's entry looks that storage up once for both (one
// task-storage lookup per syscall, and one per TLS call's return, fewer).
#pragma once
struct tls_call {
	__u64 conn;   // the library's connection object (SSL *, *tls.Conn): the connection key
	__u64 buf;    // plaintext buffer
	__u64 lenp;   // where the call stores its byte count (SSL_*_ex), or 0
	__u64 ts;     // entry, CLOCK_MONOTONIC (egress only: an ingress event is stamped at return)
	__u64 sk;     // struct sock a syscall of the call touched (0: none yet)
	__u64 last_in;     // socket the thread last read from outside a call (memory-BIO libraries: node)
	__u64 last_in_ts;  // and when
	__u32 last_in_seq; // its TCP sequence then (the start of the read)
	__u32 seq;    // TCP sequence of the call's record: egress, its first data record; ingress, the last record read
	__u8 dir;     // DIR_EGRESS (write) / DIR_INGRESS (read)
	__u8 lib;     // TLS_LIB_* of the thread's last call; 0: the thread never made one
	__u8 active;  // set at entry, cleared at return
	__u8 seq_set; // seq holds a syscall of the call's direction
	__u8 last_in_used; // a TLS call took last_in (a read call, its number): no other call takes it
	__u32 egress_min; // egress: fewer bytes than this before a write cannot hold the first data record (0: unknown)
	__u32 whole;  // the call's byte count + 1 when known at entry: it succeeds only by writing all (openssl.h ossl_write_exw); 0: read at lenp
	__u64 out_sk;  // memory-BIO egress held in tls_out (tlsout.h): its socket
	__u64 out_ts;  // when it was held
	__u32 out_len; // its plaintext bytes
	__u8 out_pending; // tls_out holds an event of this thread
	__u8 _pad[3];
};

// The connection -> socket mappings the thread last made or found in
// tls_conns (tls.h tls_map_seen), with tls_conns_gen then: a call whose
// syscall touched the same socket for the same connection object again,
// with tls_conns unchanged since, skips tls_conns' lookup (~80 ns of an
// OpenSSL return here). Two: a thread that drives both ends of a loop, a
// proxy's thread its two connections, a request's read and its response's
// write on one connection.
struct tls_mapped {
	__u64 conn[2]; // 0: empty
	__u64 sk[2];
	__u64 tuple[2]; // sock_tuple of sk then
	__u32 gen[2];   // tls_conns_gen + 1 then
	__u8 next;      // the slot the next mapping takes
	__u8 _pad[7];
};
