// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * process.bpf.c (runtime-signals): process exec, exit with its death reason, fatal signals
 * and OOM kills.
 *
 * - tp_btf/sched_process_exec: pid, ppid, uid, comm, the path given to execve, the first
 *   PROCESS_ARGS_LEN bytes of argv (read from the new mm's argument block) and the cgroup.
 * - tp_btf/signal_generate: a signal generated for a process that will kill it (SIGKILL, or
 *   a signal whose default action terminates and whose handler is SIG_DFL), delivered; with
 *   sender and target. Remembered per target tgid in `fatal` for the exit.
 * - tp_btf/mark_victim: the OOM killer's victim; the task whose allocation triggered it is
 *   the current task. Marks the victim in `fatal`.
 * - tp_btf/sched_process_exit: the LAST thread of a process exits (signal->live reached 0):
 *   wait status, lifetime, and the fatal signal / OOM mark of the last `fatal_window_ns`.
 *
 * Only tracepoints (no kprobes / fentry on the target kernels); no tracefs needed.
 */
#include "kernel_more.h"
#include "process.h"

char LICENSE[] SEC("license") = "GPL";

/* A fatal signal older than this does not explain an exit (set by the loader). */
const volatile u64 fatal_window_ns = 30000000000ULL;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct process_fatal);
} fatal SEC(".maps");

/* cred.uid is a kuid_t, `typedef struct { uid_t val; } kuid_t`. */
struct cred___proc {
	struct {
		uid_t val;
	} uid;
} __attribute__((preserve_access_index));

#define SIGKILL 9
#define SIG_DFL 0
#define TRACE_SIGNAL_DELIVERED 0
#define TRACE_SIGNAL_LOSE_INFO 4

/* Signals 1..31 whose default action terminates the process (core dump or not). */
#define FATAL_BY_DEFAULT                                                                           \
	((1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) |      \
	 (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 14) | \
	 (1u << 15) | (1u << 16) | (1u << 24) | (1u << 25) | (1u << 26) | (1u << 27) |           \
	 (1u << 29) | (1u << 30) | (1u << 31))

SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct process_exec *r = tapio_reserve(sizeof(*r), PROCESS_KIND_EXEC);
	unsigned long arg_start, arg_end, total;
	u32 len;

	if (!r)
		return 0;
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->pid = task->tgid;
	r->tid = task->pid;
	r->ppid = task->real_parent->tgid;
	r->uid = (u32)bpf_get_current_uid_gid();
	r->old_pid = old_pid;
	r->_pad = 0;
	bpf_get_current_comm(&r->comm, sizeof(r->comm)); /* current is the exec'ing task */
	if (bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), bprm->filename) < 0)
		r->filename[0] = 0;
	arg_start = task->mm->arg_start;
	arg_end = task->mm->arg_end;
	total = arg_end > arg_start ? arg_end - arg_start : 0;
	len = total > PROCESS_ARGS_LEN ? PROCESS_ARGS_LEN : total;
	r->args_total = total > 0xffffffff ? 0xffffffff : total;
	if (len > 0 && len <= PROCESS_ARGS_LEN) {
		if (bpf_probe_read_user(r->args, len, (void *)arg_start) < 0)
			len = 0;
	} else {
		len = 0;
	}
	r->args_len = len;
	tapio_submit(r);
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(process_signal, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	struct process_fatal fatal_info = {};
	struct process_signal *r;
	unsigned long handler;
	u64 pid_tgid;
	s32 code = 0;

	if (result != TRACE_SIGNAL_DELIVERED && result != TRACE_SIGNAL_LOSE_INFO)
		return 0;
	if (sig <= 0 || sig > 31)
		return 0;
	if (sig != SIGKILL) {
		if (!(FATAL_BY_DEFAULT & (1u << sig)))
			return 0;
		handler = (unsigned long)BPF_CORE_READ(task, sighand, action[(sig - 1) & 63].sa.sa_handler);
		if (handler != SIG_DFL)
			return 0;
	}
	/* SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) are not pointers. */
	if ((unsigned long)info > 4096)
		code = info->si_code;
	else if ((unsigned long)info == 1)
		code = 0x80; /* SI_KERNEL */

	pid_tgid = bpf_get_current_pid_tgid();
	fatal_info.ts_boot_ns = bpf_ktime_get_boot_ns();
	fatal_info.sender_pid = pid_tgid >> 32;
	fatal_info.signal = sig;
	fatal_info.code = code;
	fatal_info.oom = 0;
	bpf_get_current_comm(&fatal_info.sender_comm, sizeof(fatal_info.sender_comm));
	{
		u32 target = task->tgid;
		struct process_fatal *old = bpf_map_lookup_elem(&fatal, &target);

		/* A pending OOM mark survives the SIGKILL that carries it out. */
		if (old && old->oom &&
		    fatal_info.ts_boot_ns - old->ts_boot_ns < fatal_window_ns)
			fatal_info.oom = 1;
		bpf_map_update_elem(&fatal, &target, &fatal_info, BPF_ANY);
	}

	r = tapio_reserve(sizeof(*r), PROCESS_KIND_SIGNAL);
	if (!r)
		return 0;
	r->sender_cgroup_id = bpf_get_current_cgroup_id();
	r->target_cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	r->sender_pid = pid_tgid >> 32;
	r->sender_tid = (u32)pid_tgid;
	r->target_pid = task->tgid;
	r->target_tid = task->pid;
	r->signal = sig;
	r->code = code;
	r->result = result;
	r->group = group ? 1 : 0;
	__builtin_memcpy(r->sender_comm, fatal_info.sender_comm, sizeof(r->sender_comm));
	BPF_CORE_READ_STR_INTO(&r->target_comm, task, comm);
	tapio_submit(r);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(process_oom, struct task_struct *task)
{
	struct process_fatal *known, mark = {};
	struct process_oom *r;
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 victim = BPF_CORE_READ(task, tgid);
	u32 hierarchy = 0;
	u64 memcg;

	known = bpf_map_lookup_elem(&fatal, &victim);
	if (known) {
		known->oom = 1;
	} else {
		mark.ts_boot_ns = bpf_ktime_get_boot_ns();
		mark.sender_pid = pid_tgid >> 32;
		mark.signal = SIGKILL;
		mark.code = 0x80;
		mark.oom = 1;
		bpf_get_current_comm(&mark.sender_comm, sizeof(mark.sender_comm));
		bpf_map_update_elem(&fatal, &victim, &mark, BPF_ANY);
	}

	r = tapio_reserve(sizeof(*r), PROCESS_KIND_OOM);
	if (!r)
		return 0;
	memcg = more_task_ctrl_cgroup_id((struct task_struct___more *)task, MORE_MEMORY_CGRP_ID,
					 &hierarchy);
	r->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	r->memcg_id = memcg;
	r->memcg_hierarchy = hierarchy;
	r->pid = victim;
	{
		struct cred___proc *cred = (struct cred___proc *)BPF_CORE_READ(task, cred);

		r->uid = BPF_CORE_READ(cred, uid.val);
	}
	r->trigger_pid = pid_tgid >> 32;
	BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
	bpf_get_current_comm(&r->trigger_comm, sizeof(r->trigger_comm));
	tapio_submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *task)
{
	struct process_fatal *known;
	struct process_exit *r;
	u32 tgid;

	/* Only the last thread: the process is gone when its live thread count reaches 0.
	 * (tp_btf arguments are typed: fields are read with direct loads, not helpers.) */
	if (task->signal->live.counter != 0)
		return 0;
	tgid = task->tgid;
	r = tapio_reserve(sizeof(*r), PROCESS_KIND_EXIT);
	if (!r) {
		bpf_map_delete_elem(&fatal, &tgid);
		return 0;
	}
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->start_boot_ns = task->group_leader->start_boottime;
	r->pid = tgid;
	r->ppid = task->real_parent->tgid;
	r->exit_code = task->exit_code;
	r->flags = 0;
	r->killer_ts_ns = 0;
	r->killer_pid = 0;
	r->killer_signal = 0;
	r->killer_code = 0;
	r->_pad = 0;
	__builtin_memset(r->killer_comm, 0, sizeof(r->killer_comm));
	bpf_get_current_comm(&r->comm, sizeof(r->comm)); /* current is the exiting task */
	known = bpf_map_lookup_elem(&fatal, &tgid);
	if (known) {
		if (r->hdr.ts_boot_ns - known->ts_boot_ns < fatal_window_ns) {
			r->flags = PROCESS_EXIT_SIGNALLED | (known->oom ? PROCESS_EXIT_OOM_KILLED : 0);
			r->killer_ts_ns = known->ts_boot_ns;
			r->killer_pid = known->sender_pid;
			r->killer_signal = known->signal;
			r->killer_code = known->code;
			__builtin_memcpy(r->killer_comm, known->sender_comm, sizeof(r->killer_comm));
		}
		bpf_map_delete_elem(&fatal, &tgid);
	}
	tapio_submit(r);
	return 0;
}
