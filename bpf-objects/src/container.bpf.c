// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * container.bpf.c (cri-ebpf): container lifecycle from cgroup tracepoints, with OOM kills
 * and process exits attributed to cgroups.
 *
 * - tp_btf/cgroup_mkdir, cgroup_rmdir: every cgroup created or removed, with its path (user
 *   space recognises container runtimes from the path).
 * - tp_btf/cgroup_attach_task: a process moved into a cgroup (a container's start).
 * - tp_btf/mark_victim: the OOM killer's victim, with its cgroups.
 * - tp_btf/sched_process_exit: exits of processes (thread-group leaders) whose v2 cgroup or
 *   memory cgroup user space put into `watched`.
 */
#include "kernel_more.h"
#include "container.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct container_cgroup_key);
	__type(value, u8);
} watched SEC(".maps");

static __always_inline int cgroup_event(struct cgroup___more *cgrp, const char *path, u32 kind,
					struct task_struct___more *task)
{
	struct container_record *r = tapio_reserve(sizeof(*r), kind);

	if (!r)
		return 0;
	r->cgroup_id = BPF_CORE_READ(cgrp, kn, id);
	r->ctrl_cgroup_id = 0;
	r->hierarchy = BPF_CORE_READ(cgrp, root, hierarchy_id);
	r->level = BPF_CORE_READ(cgrp, level);
	r->exit_code = 0;
	r->_pad = 0;
	if (task) {
		r->pid = BPF_CORE_READ(task, tgid);
		r->tid = BPF_CORE_READ(task, pid);
		BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
	} else {
		r->pid = 0;
		r->tid = 0;
		__builtin_memset(r->comm, 0, sizeof(r->comm));
	}
	if (bpf_probe_read_kernel_str(r->path, sizeof(r->path), path) < 0)
		r->path[0] = 0;
	tapio_submit(r);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cgroup_mkdir, struct cgroup___more *cgrp, const char *path)
{
	return cgroup_event(cgrp, path, CONTAINER_KIND_MKDIR, NULL);
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir, struct cgroup___more *cgrp, const char *path)
{
	return cgroup_event(cgrp, path, CONTAINER_KIND_RMDIR, NULL);
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cgroup_attach_task, struct cgroup___more *dst, const char *path,
	     struct task_struct___more *task, bool threadgroup)
{
	/* One record per process: skip threads moved along with their leader. */
	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0;
	return cgroup_event(dst, path, CONTAINER_KIND_ATTACH, task);
}

static __always_inline struct container_record *task_event(struct task_struct___more *task,
							    u32 kind, u64 dfl, u64 memcg,
							    u32 hierarchy)
{
	struct container_record *r = tapio_reserve(sizeof(*r), kind);

	if (!r)
		return NULL;
	r->cgroup_id = dfl;
	r->ctrl_cgroup_id = memcg;
	r->hierarchy = hierarchy;
	r->pid = BPF_CORE_READ(task, tgid);
	r->tid = BPF_CORE_READ(task, pid);
	r->level = 0;
	r->exit_code = 0;
	r->_pad = 0;
	BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
	r->path[0] = 0;
	return r;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(mark_victim, struct task_struct___more *task)
{
	u32 hierarchy = 0;
	u64 memcg = more_task_ctrl_cgroup_id(task, MORE_MEMORY_CGRP_ID, &hierarchy);
	struct container_record *r;

	r = task_event(task, CONTAINER_KIND_OOM, more_task_dfl_cgroup_id(task), memcg, hierarchy);
	if (r)
		tapio_submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct___more *task)
{
	struct container_cgroup_key key = {};
	struct container_record *r;
	u32 hierarchy = 0;
	u64 dfl, memcg;

	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0; /* a thread, not the process */
	dfl = more_task_dfl_cgroup_id(task);
	memcg = more_task_ctrl_cgroup_id(task, MORE_MEMORY_CGRP_ID, &hierarchy);
	key.id = dfl;
	if (!bpf_map_lookup_elem(&watched, &key)) {
		key.id = memcg;
		key.hierarchy = hierarchy;
		if (!memcg || !bpf_map_lookup_elem(&watched, &key))
			return 0;
	}
	r = task_event(task, CONTAINER_KIND_EXIT, dfl, memcg, hierarchy);
	if (!r)
		return 0;
	r->exit_code = BPF_CORE_READ(task, exit_code);
	tapio_submit(r);
	return 0;
}
