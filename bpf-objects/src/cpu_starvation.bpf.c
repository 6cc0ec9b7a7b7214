// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * cpu_starvation.bpf.c: run-queue latency per task, with the neighbour that held the CPU.
 *
 * SCHEDSTATS is off on many kernels (sched_stat_* never fire), so the wait is measured the
 * runqlat way: a task becomes runnable at sched_wakeup / sched_wakeup_new, or at sched_switch
 * when it is switched out while still runnable (preempted); it stops waiting at the
 * sched_switch that puts it on a CPU. Waits of at least `min_delay_ns` become records.
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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, u32); /* tid */
	__type(value, struct enqueued);
} runnable SEC(".maps");

/* Since when the current task of each CPU runs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} running_since SEC(".maps");

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

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct___more *prev,
	     struct task_struct___more *next)
{
	u32 zero = 0, tid, nb_hierarchy;
	u64 *since_slot = bpf_map_lookup_elem(&running_since, &zero);
	u64 now = bpf_ktime_get_boot_ns(), delay, since = 0, from;
	struct cpu_starvation_record *r;
	struct enqueued *e;

	if (preempt || more_task_state(prev) == 0)
		enqueue(prev, CPU_STARVATION_F_PREEMPTED);
	if (since_slot) {
		since = *since_slot;
		*since_slot = now;
	}

	tid = BPF_CORE_READ(next, pid);
	if (!tid)
		return 0;
	e = bpf_map_lookup_elem(&runnable, &tid);
	if (!e)
		return 0;
	delay = now - e->ts_ns;
	if (delay < min_delay_ns)
		goto done;
	r = tapio_reserve(sizeof(*r), CPU_STARVATION_KIND_WAIT);
	if (!r)
		goto done;
	from = since > e->ts_ns ? since : e->ts_ns;
	r->delay_ns = delay;
	r->overlap_ns = since ? now - from : 0;
	r->flags = e->flags;
	r->pid = BPF_CORE_READ(next, tgid);
	r->tid = tid;
	r->cgroup_id = more_task_dfl_cgroup_id(next);
	r->ctrl_cgroup_id = more_task_ctrl_cgroup_id(next, MORE_CPU_CGRP_ID, &r->ctrl_hierarchy);
	r->nb_pid = BPF_CORE_READ(prev, tgid);
	r->nb_tid = BPF_CORE_READ(prev, pid);
	if (r->nb_tid) {
		r->nb_cgroup_id = more_task_dfl_cgroup_id(prev);
		r->nb_ctrl_cgroup_id =
			more_task_ctrl_cgroup_id(prev, MORE_CPU_CGRP_ID, &nb_hierarchy);
	} else {
		r->nb_cgroup_id = 0;
		r->nb_ctrl_cgroup_id = 0;
	}
	BPF_CORE_READ_STR_INTO(&r->comm, next, comm);
	BPF_CORE_READ_STR_INTO(&r->nb_comm, prev, comm);
	tapio_submit(r);
done:
	bpf_map_delete_elem(&runnable, &tid);
	return 0;
}
