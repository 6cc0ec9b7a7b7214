/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Record and map layouts of process.bpf.c, mirrored by plugins/process/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_PROCESS_H__
#define __TAPIO_PROCESS_H__

#include "tapio.h"

#define PROCESS_PATH_LEN 256 /* executable path as passed to execve, NUL-terminated */
#define PROCESS_ARGS_LEN 256 /* first bytes of the argument block (NUL-separated argv) */

/* Record kinds (header.kind). */
#define PROCESS_KIND_EXEC 1   /* a process executed a new program */
#define PROCESS_KIND_EXIT 2   /* the last thread of a process exited */
#define PROCESS_KIND_SIGNAL 3 /* a fatal signal was generated for a process */
#define PROCESS_KIND_OOM 4    /* the OOM killer chose a victim */

/* process_exit.flags */
#define PROCESS_EXIT_OOM_KILLED 1 /* mark_victim chose it */
#define PROCESS_EXIT_SIGNALLED 2  /* a fatal signal was generated for it (killer_* valid) */

struct process_exec {
	struct tapio_record_header hdr;
	u64 cgroup_id;  /* v2 cgroup of the process */
	u32 pid;        /* tgid */
	u32 tid;        /* thread that called execve (the leader after exec) */
	u32 ppid;       /* real parent's tgid */
	u32 uid;        /* real uid */
	u32 old_pid;    /* thread id before exec (differs when a non-leader thread exec'd) */
	u32 args_len;   /* bytes of `args` filled */
	u32 args_total; /* bytes of the whole argument block (args truncated when larger) */
	u32 _pad;
	char comm[TASK_COMM_LEN];
	char filename[PROCESS_PATH_LEN];
	char args[PROCESS_ARGS_LEN];
};
TAPIO_ASSERT_SIZE(struct process_exec, 584);
TAPIO_ASSERT_OFFSET(struct process_exec, pid, 24);
TAPIO_ASSERT_OFFSET(struct process_exec, comm, 56);
TAPIO_ASSERT_OFFSET(struct process_exec, filename, 72);
TAPIO_ASSERT_OFFSET(struct process_exec, args, 328);

struct process_exit {
	struct tapio_record_header hdr;
	u64 cgroup_id;     /* v2 cgroup of the process */
	u64 start_boot_ns; /* process start, CLOCK_BOOTTIME */
	u64 killer_ts_ns;  /* when the fatal signal was generated (0 = none) */
	u32 pid;           /* tgid */
	u32 ppid;
	u32 exit_code;     /* wait status: (code << 8) | signal, 0x80 = core dumped */
	u32 flags;         /* PROCESS_EXIT_* */
	u32 killer_pid;    /* tgid of the sender of the fatal signal */
	s32 killer_signal; /* that signal */
	s32 killer_code;   /* its si_code (> 0: sent by the kernel, e.g. a fault) */
	u32 _pad;
	char comm[TASK_COMM_LEN];
	char killer_comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct process_exit, 104);
TAPIO_ASSERT_OFFSET(struct process_exit, pid, 40);
TAPIO_ASSERT_OFFSET(struct process_exit, comm, 72);
TAPIO_ASSERT_OFFSET(struct process_exit, killer_comm, 88);

struct process_signal {
	struct tapio_record_header hdr;
	u64 sender_cgroup_id;
	u64 target_cgroup_id;
	u32 sender_pid; /* tgid of the current task when the signal was generated */
	u32 sender_tid;
	u32 target_pid; /* tgid of the receiving task */
	u32 target_tid;
	s32 signal;
	s32 code;   /* si_code: <= 0 sent by a process (kill, tgkill, ...), > 0 by the kernel */
	s32 result; /* trace result: 0 delivered, 4 delivered without siginfo */
	u32 group;  /* 1 = sent to the whole process, 0 = to one thread */
	char sender_comm[TASK_COMM_LEN];
	char target_comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct process_signal, 96);
TAPIO_ASSERT_OFFSET(struct process_signal, sender_pid, 32);
TAPIO_ASSERT_OFFSET(struct process_signal, sender_comm, 64);

struct process_oom {
	struct tapio_record_header hdr;
	u64 cgroup_id;       /* victim's v2 cgroup */
	u64 memcg_id;        /* victim's cgroup in the memory controller's hierarchy */
	u32 memcg_hierarchy; /* its hierarchy id (0 = cgroup v2) */
	u32 pid;             /* victim tgid */
	u32 uid;             /* victim uid (0 on kernels whose tracepoint lacks it) */
	u32 trigger_pid;     /* tgid of the task whose allocation invoked the OOM killer */
	char comm[TASK_COMM_LEN];
	char trigger_comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct process_oom, 80);
TAPIO_ASSERT_OFFSET(struct process_oom, pid, 36);
TAPIO_ASSERT_OFFSET(struct process_oom, comm, 48);

/* Value of the `fatal` LRU hash (key: tgid): the last fatal signal of a process and whether
 * the OOM killer chose it, consumed by its exit. */
struct process_fatal {
	u64 ts_boot_ns;
	u32 sender_pid;
	s32 signal;
	s32 code;
	u32 oom;
	char sender_comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct process_fatal, 40);

#endif
