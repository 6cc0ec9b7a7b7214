/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Map layouts of syscall_errors.bpf.c, mirrored by plugins/syscall-errors/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_SYSCALL_ERRORS_H__
#define __TAPIO_SYSCALL_ERRORS_H__

#include "tapio.h"

#define SYSERR_PATH_LEN 256
#define SYSERR_ERRNO_SLOTS 256   /* errno_class covers errnos 0..255 */
#define SYSERR_SYSCALL_SLOTS 512 /* path_arg covers x86-64 syscall numbers 0..511 */
#define SYSERR_CLASSES 4         /* 0 = not reported, 1 critical, 2 error, 3 warning */
#define SYSERR_COMPAT 0x80000000 /* key.nr flag: a 32-bit (ia32) syscall number */

/* Key of the `agg` hash: one aggregate per process, syscall, errno and generation. */
struct syserr_key {
	u32 pid;   /* tgid */
	u32 nr;    /* syscall number (| SYSERR_COMPAT for ia32 tasks) */
	u32 err;   /* errno (positive) */
	u32 gen;   /* generation (ctl[0] when the failure happened): user space drains old ones */
};
TAPIO_ASSERT_SIZE(struct syserr_key, 16);

/* Value of the `agg` hash. */
struct syserr_value {
	u64 count;       /* failures (atomic adds) */
	u64 first_ts_ns; /* CLOCK_BOOTTIME of the first failure (no timestamp per failure:
			  * the hot path stays one lookup and one atomic add) */
	u64 cgroup_id;   /* v2 cgroup of the first failing thread */
	u32 tid;         /* first failing thread */
	u32 severity;    /* errno class (1 critical, 2 error, 3 warning) */
	char comm[TASK_COMM_LEN];
	char path[SYSERR_PATH_LEN]; /* file syscalls: path argument of the first failure */
};
TAPIO_ASSERT_SIZE(struct syserr_value, 304);
TAPIO_ASSERT_OFFSET(struct syserr_value, tid, 24);
TAPIO_ASSERT_OFFSET(struct syserr_value, comm, 32);
TAPIO_ASSERT_OFFSET(struct syserr_value, path, 48);

/* Value of the `rate` array (one per class): a one-second window of new aggregates. */
struct syserr_rate {
	u64 window_start_ns;
	u64 count;
};
TAPIO_ASSERT_SIZE(struct syserr_rate, 16);

#endif
