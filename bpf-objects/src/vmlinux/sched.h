/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Tasks, signals, exec, memory descriptors: what the process collector reads. */
#ifndef __TAPIO_VMLINUX_SCHED_H__
#define __TAPIO_VMLINUX_SCHED_H__

#define TASK_COMM_LEN 16

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

typedef void (*__sighandler_t)(int);

struct sigaction {
	__sighandler_t sa_handler;
	unsigned long sa_flags;
} __attribute__((preserve_access_index));

struct k_sigaction {
	struct sigaction sa;
} __attribute__((preserve_access_index));

struct sighand_struct {
	struct k_sigaction action[64];
} __attribute__((preserve_access_index));

struct signal_struct {
	atomic_t live;
	int group_exit_code;
	unsigned int flags;
} __attribute__((preserve_access_index));

struct cred {
	uid_t uid; /* kuid_t is a struct { uid_t val; } in the kernel; same layout */
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int flags;
	pid_t pid;
	pid_t tgid;
	int exit_code;
	int exit_signal;
	char comm[TASK_COMM_LEN];
	u64 start_time; /* CLOCK_MONOTONIC ns */
	u64 start_boottime; /* CLOCK_BOOTTIME ns */
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct mm_struct *mm;
	struct signal_struct *signal;
	struct sighand_struct *sighand;
	const struct cred *cred;
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

struct file;

struct linux_binprm {
	struct file *file;
	const char *filename;
	const char *interp;
} __attribute__((preserve_access_index));

struct kernel_siginfo {
	int si_signo;
	int si_errno;
	int si_code;
} __attribute__((preserve_access_index));

#endif
