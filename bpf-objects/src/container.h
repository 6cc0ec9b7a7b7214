/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Record and map layouts of container.bpf.c, mirrored by plugins/container/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_CONTAINER_H__
#define __TAPIO_CONTAINER_H__

#include "tapio.h"

#define CONTAINER_PATH_LEN 256

/* Record kinds (header.kind). */
#define CONTAINER_KIND_MKDIR 1  /* a cgroup was created */
#define CONTAINER_KIND_RMDIR 2  /* a cgroup was removed */
#define CONTAINER_KIND_ATTACH 3 /* a process was moved into a cgroup */
#define CONTAINER_KIND_EXIT 4   /* a process of a watched cgroup exited */
#define CONTAINER_KIND_OOM 5    /* the OOM killer chose a victim */

struct container_record {
	struct tapio_record_header hdr;
	u64 cgroup_id;      /* mkdir/rmdir/attach: the cgroup's id; exit/oom: the task's v2 cgroup */
	u64 ctrl_cgroup_id; /* exit/oom: the task's cgroup in the memory controller's hierarchy */
	u32 hierarchy;      /* mkdir/rmdir/attach: the cgroup's hierarchy id (0 = cgroup v2);
			     * exit/oom: the memory controller's hierarchy id */
	u32 pid;            /* attach/exit/oom: tgid */
	u32 tid;            /* attach/exit/oom: thread id */
	u32 level;          /* mkdir/rmdir/attach: depth of the cgroup (root = 0) */
	u32 exit_code;      /* exit: wait status ((status << 8) | signal, 0x80 = core dumped) */
	u32 _pad;
	char comm[TASK_COMM_LEN];
	char path[CONTAINER_PATH_LEN]; /* mkdir/rmdir/attach: cgroup path inside its hierarchy */
};
TAPIO_ASSERT_SIZE(struct container_record, 328);
TAPIO_ASSERT_OFFSET(struct container_record, cgroup_id, 16);
TAPIO_ASSERT_OFFSET(struct container_record, hierarchy, 32);
TAPIO_ASSERT_OFFSET(struct container_record, comm, 56);
TAPIO_ASSERT_OFFSET(struct container_record, path, 72);

/* Key of the `watched` hash: cgroups whose process exits are reported. */
struct container_cgroup_key {
	u64 id;
	u32 hierarchy;
	u32 _pad;
};
TAPIO_ASSERT_SIZE(struct container_cgroup_key, 16);

#endif
