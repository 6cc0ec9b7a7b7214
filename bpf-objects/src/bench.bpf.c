// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench.bpf.c: a load generator for the ring-buffer benchmark and the support crate's
 * tests. Every syscall entry of the thread `target_tid` produces `burst` 64-byte records.
 */
#include "bench.h"

char LICENSE[] SEC("license") = "GPL";

const volatile u32 target_tid = 0;
const volatile u32 burst = 1;

static long emit_one(u64 index, void *ctx)
{
	struct bench_record *rec = tapio_reserve(sizeof(*rec), BENCH_KIND_RECORD);

	if (!rec)
		return 0;
	rec->seq = index;
	__builtin_memset(rec->payload, 0, sizeof(rec->payload));
	tapio_submit(rec);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(bench_sys_enter, struct pt_regs *regs, long id)
{
	if ((u32)bpf_get_current_pid_tgid() != target_tid)
		return 0;
	bpf_loop(burst, emit_one, NULL, 0);
	return 0;
}
