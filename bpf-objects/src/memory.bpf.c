// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * memory.bpf.c (memory-leak-hunter): memcg reclaim pressure, sampled RSS, and large
 * allocations of configured processes that stay outstanding.
 *
 * - tp_btf/mm_vmscan_{memcg,direct}_reclaim_{begin,end}: one record per reclaim with the
 *   stall time and the pages reclaimed, attributed to the task and its memory cgroup.
 * - tp_btf/rss_stat: fires on every RSS counter update; sampled per process, at most one
 *   record per `rss_sample_ns`.
 * - uprobes on the C library's malloc / calloc / realloc / free / mmap / munmap, attached by
 *   user space to configured pids only: allocations of at least `min_alloc_size` bytes stay
 *   in `allocs` until freed; user space reads the map and reports the old ones.
 */
#include "kernel_more.h"
#include "memory.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader. */
const volatile u64 rss_sample_ns = 1000000000;
const volatile u64 min_alloc_size = 1 << 20;
const volatile u32 filter_tgid = 0; /* 0 = every process (reclaim and rss) */

struct reclaim_start {
	u64 ts_ns;
	u32 order;
	u32 gfp;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32); /* tid */
	__type(value, struct reclaim_start);
} reclaims SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);   /* tgid */
	__type(value, u64); /* last sample, CLOCK_BOOTTIME */
} rss_last SEC(".maps");

/* An allocation call in flight on a thread (entry -> return). */
struct pending_alloc {
	u64 size;
	u64 caller;
	u64 old_addr; /* realloc: the block being resized */
	u32 call;
	u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32); /* tid */
	__type(value, struct pending_alloc);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct memory_alloc_key);
	__type(value, struct memory_alloc);
} allocs SEC(".maps");

static __always_inline void fill_task(struct memory_record *r)
{
	u64 id = bpf_get_current_pid_tgid();

	r->pid = id >> 32;
	r->tid = (u32)id;
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->ctrl_cgroup_id =
		more_task_ctrl_cgroup_id(more_current(), MORE_MEMORY_CGRP_ID, &r->ctrl_hierarchy);
	bpf_get_current_comm(r->comm, sizeof(r->comm));
}

/* ---- reclaim ---- */

static __always_inline int reclaim_begin(int order, gfp_t___more gfp)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct reclaim_start st = {};

	if (filter_tgid && (id >> 32) != filter_tgid)
		return 0;
	st.ts_ns = bpf_ktime_get_boot_ns();
	st.order = order;
	st.gfp = gfp;
	bpf_map_update_elem(&reclaims, &tid, &st, BPF_ANY);
	return 0;
}

static __always_inline int reclaim_end(unsigned long nr_reclaimed, u32 kind)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct reclaim_start *st = bpf_map_lookup_elem(&reclaims, &tid);
	struct memory_record *r;
	struct tapio_record_header hdr;

	if (!st)
		return 0;
	r = tapio_reserve(sizeof(*r), kind);
	if (r) {
		hdr = r->hdr;
		__builtin_memset(r, 0, sizeof(*r));
		r->hdr = hdr;
		fill_task(r);
		r->reclaim_ns = hdr.ts_boot_ns - st->ts_ns;
		r->reclaimed_pages = nr_reclaimed;
		r->order = st->order;
		r->gfp = st->gfp;
		tapio_submit(r);
	}
	bpf_map_delete_elem(&reclaims, &tid);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(memcg_reclaim_begin, int order, gfp_t___more gfp)
{
	return reclaim_begin(order, gfp);
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(memcg_reclaim_end, unsigned long nr_reclaimed)
{
	return reclaim_end(nr_reclaimed, MEMORY_KIND_MEMCG_RECLAIM);
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(direct_reclaim_begin, int order, gfp_t___more gfp)
{
	return reclaim_begin(order, gfp);
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(direct_reclaim_end, unsigned long nr_reclaimed)
{
	return reclaim_end(nr_reclaimed, MEMORY_KIND_DIRECT_RECLAIM);
}

/* ---- rss ---- */

/* Resident bytes of an mm counter: the percpu_counter's folded count (approximate by at
 * most the per-CPU batch). Constant indices only: a CO-RE relocation scales a constant
 * array index by the kernel's element size; a variable index would use this file's. */
static __always_inline u64 pages_to_bytes(s64 pages)
{
	return pages > 0 ? (u64)pages * 4096 : 0;
}

SEC("tp_btf/rss_stat")
int BPF_PROG(rss_stat, struct mm_struct___more *mm, int member)
{
	u32 tgid = tapio_current_tgid();
	struct memory_record *r;
	u64 now, *last;

	if (BPF_CORE_READ(more_current(), mm) != mm)
		return 0; /* a counter of another process (reclaim, exit) */
	if (filter_tgid && tgid != filter_tgid)
		return 0;
	now = bpf_ktime_get_boot_ns();
	last = bpf_map_lookup_elem(&rss_last, &tgid);
	if (last && now - *last < rss_sample_ns)
		return 0;
	bpf_map_update_elem(&rss_last, &tgid, &now, BPF_ANY);
	r = tapio_reserve(sizeof(*r), MEMORY_KIND_RSS);
	if (!r)
		return 0;
	fill_task(r);
	r->reclaim_ns = 0;
	r->reclaimed_pages = 0;
	/* MM_FILEPAGES 0, MM_ANONPAGES 1, MM_SWAPENTS 2, MM_SHMEMPAGES 3 */
	r->rss_file = pages_to_bytes(BPF_CORE_READ(mm, rss_stat[0].count));
	r->rss_anon = pages_to_bytes(BPF_CORE_READ(mm, rss_stat[1].count));
	r->swap = pages_to_bytes(BPF_CORE_READ(mm, rss_stat[2].count));
	r->rss_shmem = pages_to_bytes(BPF_CORE_READ(mm, rss_stat[3].count));
	r->order = 0;
	r->gfp = 0;
	r->_pad = 0;
	tapio_submit(r);
	return 0;
}

/* ---- allocations (uprobes) ---- */

static __always_inline int alloc_enter(struct pt_regs *ctx, u64 size, u64 old_addr, u32 call)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct pending_alloc p = {};

	if (call == MEMORY_ALLOC_MMAP) {
		/* mmap called from inside malloc & co (a large chunk, a new arena): the outer
		 * call accounts for it. */
		if (bpf_map_lookup_elem(&pending, &tid))
			return 0;
		if (size < min_alloc_size)
			return 0;
	}
	/* malloc & co are remembered whatever their size, so that an mmap they make is not
	 * counted as a second allocation. */
	p.size = size;
	p.old_addr = old_addr;
	p.call = call;
	/* On x86-64 the return address is at the top of the stack at function entry. */
	bpf_probe_read_user(&p.caller, sizeof(p.caller), (void *)PT_REGS_SP(ctx));
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

static __always_inline int alloc_exit(struct pt_regs *ctx, u32 call)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct pending_alloc *p = bpf_map_lookup_elem(&pending, &tid);
	struct memory_alloc_key key = {};
	struct memory_alloc a = {};
	u64 addr = PT_REGS_RC(ctx);

	if (!p || p->call != call)
		return 0;
	key.pid = id >> 32;
	if (call == MEMORY_ALLOC_REALLOC && p->old_addr && addr) {
		key.addr = p->old_addr;
		bpf_map_delete_elem(&allocs, &key);
	}
	if (p->size >= min_alloc_size && addr && addr != (u64)-1) {
		key.addr = addr;
		a.size = p->size;
		a.ts_boot_ns = bpf_ktime_get_boot_ns();
		a.caller = p->caller;
		a.tid = tid;
		a.call = call;
		if (bpf_map_update_elem(&allocs, &key, &a, BPF_ANY) == 0)
			tapio_stat_add(MEMORY_STAT_ALLOCS, 1);
		else
			tapio_stat_add(MEMORY_STAT_ALLOC_LOST, 1);
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

static __always_inline int release(u64 addr)
{
	struct memory_alloc_key key = {};

	if (!addr)
		return 0;
	key.pid = tapio_current_tgid();
	key.addr = addr;
	bpf_map_delete_elem(&allocs, &key);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, u64 size)
{
	return alloc_enter(ctx, size, 0, MEMORY_ALLOC_MALLOC);
}

SEC("uretprobe")
int BPF_KRETPROBE(malloc_exit)
{
	return alloc_exit(ctx, MEMORY_ALLOC_MALLOC);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, u64 nmemb, u64 size)
{
	return alloc_enter(ctx, nmemb * size, 0, MEMORY_ALLOC_CALLOC);
}

SEC("uretprobe")
int BPF_KRETPROBE(calloc_exit)
{
	return alloc_exit(ctx, MEMORY_ALLOC_CALLOC);
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, u64 ptr, u64 size)
{
	return alloc_enter(ctx, size, ptr, MEMORY_ALLOC_REALLOC);
}

SEC("uretprobe")
int BPF_KRETPROBE(realloc_exit)
{
	return alloc_exit(ctx, MEMORY_ALLOC_REALLOC);
}

SEC("uprobe")
int BPF_KPROBE(free_enter, u64 ptr)
{
	return release(ptr);
}

SEC("uprobe")
int BPF_KPROBE(mmap_enter, u64 addr, u64 len)
{
	return alloc_enter(ctx, len, 0, MEMORY_ALLOC_MMAP);
}

SEC("uretprobe")
int BPF_KRETPROBE(mmap_exit)
{
	return alloc_exit(ctx, MEMORY_ALLOC_MMAP);
}

SEC("uprobe")
int BPF_KPROBE(munmap_enter, u64 addr)
{
	return release(addr);
}
