/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Record and map layouts of memory.bpf.c, mirrored by plugins/memory/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_MEMORY_H__
#define __TAPIO_MEMORY_H__

#include "tapio.h"

/* Record kinds (header.kind). */
#define MEMORY_KIND_MEMCG_RECLAIM 1  /* one memcg reclaim (a charge over the cgroup's limit) */
#define MEMORY_KIND_DIRECT_RECLAIM 2 /* one direct reclaim (machine-wide shortage) */
#define MEMORY_KIND_RSS 3            /* a sampled RSS reading of a process */

struct memory_record {
	struct tapio_record_header hdr; /* ts_boot_ns = end of reclaim / time of the sample */
	u64 cgroup_id;       /* v2 cgroup id of the task */
	u64 ctrl_cgroup_id;  /* its cgroup in the memory controller's hierarchy */
	u64 reclaim_ns;      /* reclaim: how long the task stalled in reclaim */
	u64 reclaimed_pages; /* reclaim: pages reclaimed */
	u64 rss_file;        /* rss: file-backed resident bytes */
	u64 rss_anon;        /* rss: anonymous resident bytes */
	u64 rss_shmem;       /* rss: shared-memory resident bytes */
	u64 swap;            /* rss: swapped-out bytes */
	u32 pid;             /* tgid */
	u32 tid;
	u32 ctrl_hierarchy;  /* hierarchy id of the memory controller (0 = cgroup v2) */
	u32 order;           /* reclaim: allocation order that triggered it */
	u32 gfp;             /* reclaim: gfp flags */
	u32 _pad;
	char comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct memory_record, 120);
TAPIO_ASSERT_OFFSET(struct memory_record, cgroup_id, 16);
TAPIO_ASSERT_OFFSET(struct memory_record, pid, 80);
TAPIO_ASSERT_OFFSET(struct memory_record, comm, 104);

/* Key of the `allocs` hash: outstanding tracked allocations. */
struct memory_alloc_key {
	u32 pid; /* tgid */
	u32 _pad;
	u64 addr;
};
TAPIO_ASSERT_SIZE(struct memory_alloc_key, 16);

/* Which call made an allocation. */
#define MEMORY_ALLOC_MALLOC 1
#define MEMORY_ALLOC_CALLOC 2
#define MEMORY_ALLOC_REALLOC 3
#define MEMORY_ALLOC_MMAP 4

/* Value of the `allocs` hash. */
struct memory_alloc {
	u64 size;       /* bytes requested */
	u64 ts_boot_ns; /* when the call returned, CLOCK_BOOTTIME */
	u64 caller;     /* return address of the allocation call (in the caller's code) */
	u32 tid;
	u32 call;       /* MEMORY_ALLOC_* */
};
TAPIO_ASSERT_SIZE(struct memory_alloc, 32);
TAPIO_ASSERT_OFFSET(struct memory_alloc, tid, 24);

/* Program-specific indices of `tapio_stats` (after produced / dropped). */
#define MEMORY_STAT_ALLOCS TAPIO_STAT_SPARE     /* large allocations tracked */
#define MEMORY_STAT_ALLOC_LOST TAPIO_STAT_SPARE2 /* large allocations not tracked: map full */

#endif
