/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Record layout of cpu_starvation.bpf.c, mirrored by plugins/cpu-starvation/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_CPU_STARVATION_H__
#define __TAPIO_CPU_STARVATION_H__

#include "tapio.h"

/* Record kinds (header.kind). */
#define CPU_STARVATION_KIND_WAIT 1

/* Bits of `flags`. */
#define CPU_STARVATION_F_WAKEUP_NEW 0x1 /* the wait began at sched_wakeup_new (a new task) */
#define CPU_STARVATION_F_PREEMPTED 0x2  /* the wait began when the task was preempted */
#define CPU_STARVATION_F_TRUNCATED 0x4  /* the wait spans more runs than the history keeps */

/* Runs of each CPU remembered to find who ran during a wait. */
#define CPU_STARVATION_HISTORY 8

/*
 * One run-queue wait of at least `min_delay_ns`: from the moment `tid` became runnable
 * (wakeup, new task, or preemption) until it got a CPU (header.ts_boot_ns, header.cpu).
 * From the last CPU_STARVATION_HISTORY runs of that CPU: how long other tasks ran there
 * during the wait (`busy_ns`), and the one that ran longest (the neighbour).
 */
struct cpu_starvation_record {
	struct tapio_record_header hdr;
	u64 delay_ns;       /* runnable -> running */
	u64 busy_ns;        /* part of the wait other tasks ran on this CPU */
	u64 nb_overlap_ns;  /* part of the wait the neighbour ran on this CPU */
	u64 cgroup_id;      /* v2 cgroup id of the waiting task */
	u64 ctrl_cgroup_id; /* its cgroup in the cpu controller's hierarchy */
	u32 pid;            /* waiting task's tgid */
	u32 tid;            /* waiting task's thread id */
	u32 nb_pid;         /* neighbour's tgid */
	u32 nb_tid;         /* neighbour's thread id (0 = none: the CPU was idle) */
	u32 ctrl_hierarchy; /* hierarchy id of the cpu controller (0 = cgroup v2) */
	u32 flags;          /* CPU_STARVATION_F_* */
	char comm[TASK_COMM_LEN];
	char nb_comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct cpu_starvation_record, 112);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, delay_ns, 16);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, pid, 56);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, flags, 76);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, comm, 80);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, nb_comm, 96);

#endif
