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

/*
 * One run-queue wait of at least `min_delay_ns`: from the moment `tid` became runnable
 * (wakeup, new task, or preemption) until it got a CPU (header.ts_boot_ns, header.cpu). The
 * neighbour is the task that ran on that CPU right before it, with how much of the wait it
 * occupied there.
 */
struct cpu_starvation_record {
	struct tapio_record_header hdr;
	u64 delay_ns;          /* runnable -> running */
	u64 overlap_ns;        /* part of the wait during which the neighbour ran on this CPU */
	u64 cgroup_id;         /* v2 cgroup id of the waiting task */
	u64 ctrl_cgroup_id;    /* its cgroup in the cpu controller's hierarchy */
	u64 nb_cgroup_id;      /* v2 cgroup id of the neighbour */
	u64 nb_ctrl_cgroup_id; /* the neighbour's cpu-controller cgroup */
	u32 pid;               /* waiting task's tgid */
	u32 tid;               /* waiting task's thread id */
	u32 nb_pid;            /* neighbour's tgid (0 with nb_tid 0 = the CPU was idle) */
	u32 nb_tid;            /* neighbour's thread id */
	u32 ctrl_hierarchy;    /* hierarchy id of the cpu controller (0 = cgroup v2) */
	u32 flags;             /* CPU_STARVATION_F_* */
	char comm[TASK_COMM_LEN];
	char nb_comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct cpu_starvation_record, 120);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, delay_ns, 16);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, pid, 64);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, flags, 84);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, comm, 88);
TAPIO_ASSERT_OFFSET(struct cpu_starvation_record, nb_comm, 104);

#endif
