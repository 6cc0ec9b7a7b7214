/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* cgroup v2 identity: the cgroup id is the id of its kernfs node. */
#ifndef __TAPIO_VMLINUX_CGROUP_H__
#define __TAPIO_VMLINUX_CGROUP_H__

struct kernfs_node {
	u64 id;
	const char *name;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
	int level;
} __attribute__((preserve_access_index));

struct cgroup_subsys_state {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

#endif
