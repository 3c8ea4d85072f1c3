// Generations: a one-slot __u32 array bumped after every change of the
// map or state it stands for, so that a thread's copy of something read
// from that map (kept in its storage with the generation then) holds only
// while the generation has not moved. sockets_gen, serving_gen,
// tls_conns_gen, go_gen (the last bumped by user space).
#pragma once

#define GENERATION_MAP(name)                                                           \
	struct {                                                                       \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                      \
		__uint(max_entries, 1);                                                \
		__type(key, __u32);                                                    \
		__type(value, __u32);                                                  \
	} name SEC(".maps")

// gen_bump moves the generation in map (after the change it counts).
static __always_inline void gen_bump(void *map)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(map, &zero);
	if (gen)
		__sync_fetch_and_add(gen, 1);
}

// gen_of is the generation in map now (0 if the slot cannot be read).
static __always_inline __u32 gen_of(void *map)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(map, &zero);
	return gen ? *gen : 0;
}
