/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * kernel_more.h: kernel types read by the storage_io, cpu_starvation, memory and container
 * programs beyond the shared vmlinux/ headers, and the cgroup helpers they share.
 *
 * Every type is a CO-RE flavour (`name___more`): the relocator drops the `___more` suffix
 * and matches the running kernel's type of that name, so these declarations never collide
 * with the shared ones and list only the fields these programs read.
 *
 * Cgroups: a task has one cgroup v2 ("default hierarchy") cgroup and, on hosts that still
 * mount cgroup v1 hierarchies, one cgroup per v1 controller. Containers on v1 hosts live in
 * the v1 hierarchies while their v2 cgroup is the root, so records carry both: the v2 id and
 * the id of the cgroup holding a controller (memory, cpu) with its hierarchy id (0 = v2).
 */
#ifndef __TAPIO_KERNEL_MORE_H__
#define __TAPIO_KERNEL_MORE_H__

#include "tapio.h"

typedef unsigned int gfp_t___more;
typedef u32 dev_t___more;

/* ---- cgroups ---- */

struct cgroup_root___more {
	int hierarchy_id;
} __attribute__((preserve_access_index));

struct cgroup___more {
	struct kernfs_node *kn;
	int level;
	struct cgroup_root___more *root;
} __attribute__((preserve_access_index));

struct cgroup_subsys_state___more {
	struct cgroup___more *cgroup;
} __attribute__((preserve_access_index));

struct css_set___more {
	struct cgroup_subsys_state___more *subsys[12];
	struct cgroup___more *dfl_cgrp;
} __attribute__((preserve_access_index));

enum cgroup_subsys_id___more {
	cpu_cgrp_id___more = 1,
	memory_cgrp_id___more = 4,
};

/* ---- memory ---- */

struct percpu_counter___more {
	s64 count;
} __attribute__((preserve_access_index));

/* Kernels >= 6.2: one percpu_counter per member (file, anon, swap entries, shmem). */
struct mm_struct___more {
	struct percpu_counter___more rss_stat[4];
} __attribute__((preserve_access_index));

/* ---- files ---- */

struct qstr___more {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry___more {
	struct qstr___more d_name;
} __attribute__((preserve_access_index));

struct path___more {
	struct dentry___more *dentry;
} __attribute__((preserve_access_index));

struct super_block___more {
	dev_t___more s_dev;
} __attribute__((preserve_access_index));

struct inode___more {
	struct super_block___more *i_sb;
} __attribute__((preserve_access_index));

struct file___more {
	struct path___more f_path;
	struct inode___more *f_inode;
} __attribute__((preserve_access_index));

struct fdtable___more {
	unsigned int max_fds;
	struct file___more **fd;
} __attribute__((preserve_access_index));

struct files_struct___more {
	struct fdtable___more *fdt;
} __attribute__((preserve_access_index));

/* ---- tasks ---- */

struct task_struct___more {
	unsigned int __state; /* `long state` before 5.14: see task_struct___pre514 */
	pid_t pid;
	pid_t tgid;
	int exit_code;
	char comm[TASK_COMM_LEN];
	struct css_set___more *cgroups;
	struct mm_struct___more *mm;
	struct files_struct___more *files;
} __attribute__((preserve_access_index));

struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

/* ---- block ---- */

struct block_device___more {
	dev_t___more bd_dev;
} __attribute__((preserve_access_index));

struct gendisk___more {
	int major;
	int first_minor;
} __attribute__((preserve_access_index));

struct request_queue___more {
	struct gendisk___more *disk;
} __attribute__((preserve_access_index));

struct request___more {
	struct request_queue___more *q;
	unsigned int cmd_flags;
	unsigned int __data_len;
	u64 __sector;
	struct block_device___more *part;
} __attribute__((preserve_access_index));

enum req_flag_bits___more {
	__REQ_SYNC___more = 11,
	__REQ_META___more = 12,
	__REQ_FUA___more = 17,
	__REQ_PREFLUSH___more = 18,
};

/* ---- helpers ---- */

/* The task's run state (0 = runnable), on kernels before and after the 5.14 rename. */
static __always_inline long more_task_state(struct task_struct___more *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* The v2 cgroup id of `task` (what bpf_get_current_cgroup_id returns for current). */
static __always_inline u64 more_task_dfl_cgroup_id(struct task_struct___more *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/* The cgroup of `task` in the hierarchy of controller `subsys_id` (an enum cgroup_subsys_id
 * value from bpf_core_enum_value), with its hierarchy id (0 = cgroup v2). */
static __always_inline u64 more_task_ctrl_cgroup_id(struct task_struct___more *task, int subsys_id,
						    u32 *hierarchy)
{
	struct cgroup___more *cgrp;

	*hierarchy = 0;
	if (subsys_id < 0 || subsys_id >= 12)
		return 0;
	cgrp = BPF_CORE_READ(task, cgroups, subsys[subsys_id], cgroup);
	if (!cgrp)
		return 0;
	*hierarchy = BPF_CORE_READ(cgrp, root, hierarchy_id);
	return BPF_CORE_READ(cgrp, kn, id);
}

#define MORE_CPU_CGRP_ID bpf_core_enum_value(enum cgroup_subsys_id___more, cpu_cgrp_id___more)
#define MORE_MEMORY_CGRP_ID                                                                        \
	bpf_core_enum_value(enum cgroup_subsys_id___more, memory_cgrp_id___more)

/* The current task, as the flavour above. */
static __always_inline struct task_struct___more *more_current(void)
{
	return (struct task_struct___more *)bpf_get_current_task_btf();
}

#endif
