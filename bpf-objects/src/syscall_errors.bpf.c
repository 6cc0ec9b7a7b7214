// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * syscall_errors.bpf.c: failed system calls, aggregated in the kernel.
 *
 * One program on tp_btf/sys_exit (the raw sys_exit tracepoint with typed arguments: the
 * saved registers are read with direct loads instead of probe-read helper calls). A failure (-4095 <= ret < 0) whose errno has a class in
 * `errno_class` (set by the loader from the allow-list) is counted in the `agg` hash under
 * (tgid, syscall, errno, generation). Only the first failure of an aggregate does real work:
 * it passes the per-class rate limit (`rate_limit`: new aggregates per second; failures of
 * rate-limited new aggregates are counted in `counts` and tapio_stats[SPARE2]), records
 * comm, cgroup, thread and, for file syscalls (`path_arg`), the path argument. Every later
 * failure is one atomic add. Nothing goes through the ring: user space flips the generation
 * in `ctl` each report interval and drains the aggregates of older generations (no program
 * writes them any more), so counts are exact.
 *
 * The path is read at exit from the saved user registers (pt_regs of the syscall entry:
 * the argument registers are not modified by the syscall), which equals capturing it at
 * sys_enter without a second program on every syscall of the machine.
 */
#include "tapio.h"
#include "syscall_errors.h"

char LICENSE[] SEC("license") = "GPL";

/* errno -> class (0 = not reported). */
const volatile u8 errno_class[SYSERR_ERRNO_SLOTS] = {};
/* syscall number -> which argument is a user path (0 = none, 1 = first, 2 = second). */
const volatile u8 path_arg[SYSERR_SYSCALL_SLOTS] = {};
/* class -> new aggregates allowed per second (0 = unlimited). */
const volatile u32 rate_limit[SYSERR_CLASSES] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct syserr_key);
	__type(value, struct syserr_value);
} agg SEC(".maps");

/* ctl[0]: the current generation (written by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSERR_CLASSES);
	__type(key, u32);
	__type(value, struct syserr_rate);
} rate SEC(".maps");

/* counts[0]: every allow-listed failure seen; counts[class]: failures not counted in an
 * aggregate because the class's rate limit was reached. After the final drain:
 * counts[0] == reported + sum(counts[1..3]) + tapio_stats[SPARE] (map full), exactly. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYSERR_CLASSES);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

/* Scratch for building a new aggregate (too large for comfort on the 512-byte stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct syserr_value);
} scratch SEC(".maps");

#define EEXIST 17
#define USER32_CS 0x23 /* __USER32_CS: the task runs 32-bit code */

/* Whether a new aggregate of `cls` fits this second's budget. */
static __always_inline bool rate_ok(u32 cls, u64 now)
{
	struct syserr_rate *s;
	u32 limit = rate_limit[cls & (SYSERR_CLASSES - 1)];

	if (limit == 0)
		return true;
	s = bpf_map_lookup_elem(&rate, &cls);
	if (!s)
		return true;
	if (now - s->window_start_ns >= 1000000000ULL) {
		/* Racy between CPUs: at worst a window starts twice; the limit still holds
		 * within a small margin. */
		s->window_start_ns = now;
		s->count = 0;
	}
	__sync_fetch_and_add(&s->count, 1);
	return s->count <= limit;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(syscall_errors, struct pt_regs *regs, long ret)
{
	struct syserr_key key = {};
	struct syserr_value *v;
	u32 err, cls, zero = 0, *gen;
	unsigned long nr, ptr = 0;
	u8 arg = 0;
	u64 now, *n;
	long rc;

	if (ret >= 0 || ret < -4095)
		return 0;
	err = -ret;
	if (err >= SYSERR_ERRNO_SLOTS)
		return 0;
	cls = errno_class[err];
	if (cls == 0)
		return 0;
	n = bpf_map_lookup_elem(&counts, &zero);
	if (n)
		*n += 1; /* per-CPU slot */

	key.pid = tapio_current_tgid();
	nr = regs->orig_ax; /* typed (BTF) pointer: direct loads, no probe-read helper */
	key.nr = nr;
	if (regs->cs == USER32_CS)
		key.nr |= SYSERR_COMPAT;
	key.err = err;
	gen = bpf_map_lookup_elem(&ctl, &zero);
	key.gen = gen ? *gen : 0;

	v = bpf_map_lookup_elem(&agg, &key);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		return 0;
	}

	now = bpf_ktime_get_boot_ns();
	if (!rate_ok(cls, now)) {
		n = bpf_map_lookup_elem(&counts, &cls);
		if (n)
			*n += 1;
		tapio_stat_add(TAPIO_STAT_SPARE2, 1);
		return 0;
	}

	v = bpf_map_lookup_elem(&scratch, &zero);
	if (!v)
		return 0;
	v->count = 1;
	v->first_ts_ns = now;
	v->cgroup_id = bpf_get_current_cgroup_id();
	v->tid = (u32)bpf_get_current_pid_tgid();
	v->severity = cls;
	bpf_get_current_comm(&v->comm, sizeof(v->comm));
	v->path[0] = 0;
	if (!(key.nr & SYSERR_COMPAT) && nr < SYSERR_SYSCALL_SLOTS) {
		arg = path_arg[nr];
		if (arg == 1)
			ptr = regs->di;
		else if (arg == 2)
			ptr = regs->si;
		if (ptr && bpf_probe_read_user_str(v->path, sizeof(v->path), (void *)ptr) < 0)
			v->path[0] = 0;
	}
	rc = bpf_map_update_elem(&agg, &key, v, BPF_NOEXIST);
	if (rc == -EEXIST) {
		/* Another CPU created it first. */
		v = bpf_map_lookup_elem(&agg, &key);
		if (v)
			__sync_fetch_and_add(&v->count, 1);
		else
			tapio_stat_add(TAPIO_STAT_SPARE, 1);
	} else if (rc) {
		tapio_stat_add(TAPIO_STAT_SPARE, 1); /* map full: a lost failure, counted */
	}
	return 0;
}
