// Go processes whose goroutines the collector tracks (tgid → the offset of
// runtime.g.goid in its executable, never 0), filled by user space when it
// finds a Go program and attaches its uprobes (goroutine.h goroutine_key);
// a process's entry goes at its exit or exec (procs.h).
#pragma once
#include "gen.h"
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u16);
} go_procs SEC(".maps");

// Bumped by user space after each change of go_procs: a thread caches
// whether its process is listed (maps/active.h go_gen) until it moves.
GENERATION_MAP(go_gen);
