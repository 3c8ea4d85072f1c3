// Which processes make TLS calls the probes read (maps/tlsprocs.h): the
// probes mark their process (tls_proc_mark) before the state a socket
// syscall's Go TLS checks look for exists (a goroutine's call in
// gotls_calls, a socket in tls_socks), and a socket syscall reads its
// process's marks from its thread's storage (tls_proc_bits), one array
// lookup while nothing was marked since, a hash lookup otherwise.
#pragma once
#include "maps/tlsprocs.h"
#include "maps/active.h"

// tls_proc_mark sets member bit (TLS_PROC_*) of process tgid's entry, then
// bumps the generation; when the map is full, opens the checks for all.
// Byte stores, so that two CPUs setting the two members both keep theirs.
static __always_inline void tls_proc_mark(__u32 tgid, __u8 bit)
{
	struct tls_proc *p = bpf_map_lookup_elem(&tls_procs, &tgid);
	if (p && (bit == TLS_PROC_CALLS ? p->calls : p->socks))
		return; // most calls: marked before
	__u32 zero = 0;
	struct tls_procs_gen *g = bpf_map_lookup_elem(&tls_procs_gen, &zero);
	if (!g)
		return; // an array's slot 0 is always there
	if (!p) {
		struct tls_proc n = {.calls = bit == TLS_PROC_CALLS, .socks = bit == TLS_PROC_SOCKS};
		if (!bpf_map_update_elem(&tls_procs, &tgid, &n, BPF_NOEXIST)) {
			__sync_fetch_and_add(&g->gen, 1);
			return;
		}
		p = bpf_map_lookup_elem(&tls_procs, &tgid); // another CPU made it
		if (!p) {
			g->all = 1; // full
			return;
		}
	}
	if (bit == TLS_PROC_CALLS)
		p->calls = 1;
	else
		p->socks = 1;
	__sync_fetch_and_add(&g->gen, 1);
}

// tls_proc_bits returns the TLS_PROC_* bits of process tgid, whose thread's
// storage is a (NULL: none yet, nothing cached). The generation is read
// before the entry: a mark made meanwhile moves it, and the next syscall
// reads the entry again. A goroutine that entered a call on another thread
// and goes on here does so after that thread's probe marked the process
// (the Go scheduler hands it over with atomic instructions).
static __always_inline __u8 tls_proc_bits(struct active_io *a, __u32 tgid)
{
	__u32 zero = 0;
	struct tls_procs_gen *g = bpf_map_lookup_elem(&tls_procs_gen, &zero);
	if (!g || g->all)
		return TLS_PROC_CALLS | TLS_PROC_SOCKS;
	__u32 want = g->gen + 1;
	if (a && a->tp_gen == want)
		return a->tp;
	struct tls_proc *p = bpf_map_lookup_elem(&tls_procs, &tgid);
	__u8 bits = 0;
	if (p)
		bits = (p->calls ? TLS_PROC_CALLS : 0) | (p->socks ? TLS_PROC_SOCKS : 0);
	if (a) {
		a->tp = bits;
		a->tp_gen = want;
	}
	return bits;
}
