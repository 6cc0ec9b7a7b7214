/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Record layout of storage_io.bpf.c, mirrored by plugins/storage-io/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_STORAGE_IO_H__
#define __TAPIO_STORAGE_IO_H__

#include "tapio.h"

#define STORAGE_IO_NAME_LEN 48

/* Record kinds (header.kind). */
#define STORAGE_IO_KIND_BLOCK 1 /* one block request, issue -> complete */
#define STORAGE_IO_KIND_FSYNC 2 /* one fsync / fdatasync call, enter -> exit */

/* Bits of `flags`. */
#define STORAGE_IO_F_SYNC 0x1      /* REQ_SYNC */
#define STORAGE_IO_F_META 0x2      /* REQ_META */
#define STORAGE_IO_F_FUA 0x4       /* REQ_FUA */
#define STORAGE_IO_F_PREFLUSH 0x8  /* REQ_PREFLUSH */
#define STORAGE_IO_F_ISSUER 0x10   /* pid/comm are the issuing context (not seen at submit) */
#define STORAGE_IO_F_DATASYNC 0x20 /* fsync record of fdatasync(2) */

struct storage_io_record {
	struct tapio_record_header hdr; /* ts_boot_ns = completion */
	u64 latency_ns; /* block: issue -> complete; fsync: syscall enter -> exit */
	u64 queue_ns;   /* block: submit (block_io_start) -> issue; 0 when unknown */
	u64 sector;     /* block: first sector */
	u64 cgroup_id;  /* v2 cgroup id of the submitter */
	u32 dev;        /* kernel dev_t (major << 20 | minor) of the device / filesystem */
	u32 bytes;      /* block: bytes completed; fsync: 0 */
	u32 pid;        /* submitter's tgid (0 = unknown) */
	u32 tid;        /* submitter's thread id */
	u32 op;         /* block: REQ_OP_* (0 read, 1 write, 2 flush, 3 discard, ...); fsync: fd */
	s32 error;      /* block: blk_status_t; fsync: return value (0 or -errno) */
	u32 flags;      /* STORAGE_IO_F_* */
	u32 _pad;
	char comm[TASK_COMM_LEN];
	char name[STORAGE_IO_NAME_LEN]; /* fsync: the file's name (last path component) */
};
TAPIO_ASSERT_SIZE(struct storage_io_record, 144);
TAPIO_ASSERT_OFFSET(struct storage_io_record, latency_ns, 16);
TAPIO_ASSERT_OFFSET(struct storage_io_record, dev, 48);
TAPIO_ASSERT_OFFSET(struct storage_io_record, flags, 72);
TAPIO_ASSERT_OFFSET(struct storage_io_record, comm, 80);
TAPIO_ASSERT_OFFSET(struct storage_io_record, name, 96);

#endif
