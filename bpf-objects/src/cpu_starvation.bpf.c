// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * cpu_starvation.bpf.c: run-queue latency per task, with the neighbour that held the CPU.
 *
 * SCHEDSTATS is off on many kernels (sched_stat_* never fire), so the wait is measured the
 * runqlat way: a task becomes runnable at sched_wakeup / sched_wakeup_new, or at sched_switch
 * when it is switched out while still runnable (preempted); it stops waiting at the
 * sched_switch that puts it on a CPU. Waits of at least `min_delay_ns` become records.
 *
 * Who ran meanwhile: each CPU keeps its last CPU_STARVATION_HISTORY runs (task, start, end)
 * in a per-CPU ring; at the end of a wait the runs overlapping it are summed per task.
 */
#include "kernel_more.h"
#include "cpu_starvation.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader. */
const volatile u64 min_delay_ns = 10000000;
const volatile u32 filter_tgid = 0; /* 0 = every process */

struct enqueued {
	u64 ts_ns;
	u32 flags;
	u32 _pad;
};

/* LRU so that entries of tasks that exit while marked runnable cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, u32); /* tid */
	__type(value, struct enqueued);
} runnable SEC(".maps");

/* One finished run on a CPU. */
struct run {
	u64 start_ns;
	u64 end_ns;
	u32 pid;
	u32 tid;
	char comm[TASK_COMM_LEN];
};

/* The last runs of a CPU (a ring: `next` is the slot written next) and since when the
 * current task runs. */
struct cpu_history {
	u64 running_since_ns;
	u32 next;
	u32 _pad;
	struct run runs[CPU_STARVATION_HISTORY];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_history);
} history SEC(".maps");

static __always_inline int enqueue(struct task_struct___more *p, u32 flags)
{
	u32 tid = BPF_CORE_READ(p, pid);
	struct enqueued e = {};

	if (!tid)
		return 0; /* the idle task */
	if (filter_tgid && BPF_CORE_READ(p, tgid) != filter_tgid)
		return 0;
	e.ts_ns = bpf_ktime_get_boot_ns();
	e.flags = flags;
	bpf_map_update_elem(&runnable, &tid, &e, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct___more *p)
{
	return enqueue(p, 0);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct___more *p)
{
	return enqueue(p, CPU_STARVATION_F_WAKEUP_NEW);
}

/* Candidates while summing the history: distinct tasks that ran during the wait. */
#define CANDIDATES 4

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct___more *prev,
	     struct task_struct___more *next)
{
	u32 zero = 0, tid, i, slot;
	struct cpu_history *h = bpf_map_lookup_elem(&history, &zero);
	u64 now = bpf_ktime_get_boot_ns(), delay, start, busy = 0;
	u64 cand_ns[CANDIDATES] = {};
	u32 cand_idx[CANDIDATES] = {};
	u32 cand_tid[CANDIDATES] = {};
	u32 ncand = 0, best = 0, flags;
	struct cpu_starvation_record *r;
	struct enqueued *e;
	struct run *run;

	if (!h)
		return 0;
	if (preempt || more_task_state(prev) == 0)
		enqueue(prev, CPU_STARVATION_F_PREEMPTED);

	/* Close prev's run. */
	if (h->running_since_ns) {
		slot = h->next & (CPU_STARVATION_HISTORY - 1);
		run = &h->runs[slot];
		run->start_ns = h->running_since_ns;
		run->end_ns = now;
		run->pid = BPF_CORE_READ(prev, tgid);
		run->tid = BPF_CORE_READ(prev, pid);
		BPF_CORE_READ_INTO(&run->comm, prev, comm);
		h->next = slot + 1;
	}
	h->running_since_ns = now;

	tid = BPF_CORE_READ(next, pid);
	if (!tid)
		return 0;
	e = bpf_map_lookup_elem(&runnable, &tid);
	if (!e)
		return 0;
	start = e->ts_ns;
	flags = e->flags;
	delay = now - start;
	bpf_map_delete_elem(&runnable, &tid);
	if (delay < min_delay_ns)
		return 0;

	/* Who ran during [start, now] here, newest run first. */
	for (i = 0; i < CPU_STARVATION_HISTORY; i++) {
		u32 k, idx = (h->next - 1 - i) & (CPU_STARVATION_HISTORY - 1);
		struct run *rr = &h->runs[idx];
		u64 from, to, ov;

		if (rr->end_ns <= start || !rr->end_ns)
			break;
		if (i == CPU_STARVATION_HISTORY - 1 && rr->start_ns > start)
			flags |= CPU_STARVATION_F_TRUNCATED;
		if (!rr->tid || rr->tid == tid)
			continue; /* idle, or the waiting task itself */
		from = rr->start_ns > start ? rr->start_ns : start;
		to = rr->end_ns < now ? rr->end_ns : now;
		if (to <= from)
			continue;
		ov = to - from;
		busy += ov;
		for (k = 0; k < CANDIDATES; k++) {
			if (k < ncand && cand_tid[k] == rr->tid) {
				cand_ns[k] += ov;
				break;
			}
			if (k == ncand) {
				cand_tid[k] = rr->tid;
				cand_idx[k] = idx;
				cand_ns[k] = ov;
				ncand++;
				break;
			}
		}
	}
	for (i = 1; i < CANDIDATES; i++)
		if (i < ncand && cand_ns[i] > cand_ns[best])
			best = i;

	r = tapio_reserve(sizeof(*r), CPU_STARVATION_KIND_WAIT);
	if (!r)
		return 0;
	r->delay_ns = delay;
	r->busy_ns = busy;
	r->flags = flags;
	r->pid = BPF_CORE_READ(next, tgid);
	r->tid = tid;
	r->cgroup_id = more_task_dfl_cgroup_id(next);
	r->ctrl_cgroup_id = more_task_ctrl_cgroup_id(next, MORE_CPU_CGRP_ID, &r->ctrl_hierarchy);
	BPF_CORE_READ_STR_INTO(&r->comm, next, comm);
	if (ncand) {
		run = &h->runs[cand_idx[best & (CANDIDATES - 1)] & (CPU_STARVATION_HISTORY - 1)];
		r->nb_overlap_ns = cand_ns[best & (CANDIDATES - 1)];
		r->nb_pid = run->pid;
		r->nb_tid = run->tid;
		__builtin_memcpy(r->nb_comm, run->comm, sizeof(r->nb_comm));
	} else {
		r->nb_overlap_ns = 0;
		r->nb_pid = 0;
		r->nb_tid = 0;
		__builtin_memset(r->nb_comm, 0, sizeof(r->nb_comm));
	}
	tapio_submit(r);
	return 0;
}
