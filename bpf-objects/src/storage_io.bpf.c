// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * storage_io.bpf.c: block request latency per device and submitter, and fsync latency.
 *
 * - tp_btf/block_io_start (submitter context, kernels >= 6.5): who submitted the request.
 * - tp_btf/block_rq_issue: the request goes to the driver; its issue time.
 * - tp_btf/block_rq_complete: one record per request (first completion): latency = complete
 *   - issue, queue time = issue - submit.
 * - tracepoint syscalls/sys_{enter,exit}_{fsync,fdatasync}: one record per call, with the
 *   file's name and device.
 * Records faster than `min_latency_ns` are not sent.
 */
#include "kernel_more.h"
#include "storage_io.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader. */
const volatile u64 min_latency_ns = 0;
const volatile u32 filter_tgid = 0; /* 0 = every process */

/* A request between submit and completion. */
struct inflight_rq {
	u64 submit_ns;
	u64 issue_ns;
	u64 cgroup_id;
	u32 pid;
	u32 tid;
	u32 flags;
	u32 _pad;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64); /* struct request * */
	__type(value, struct inflight_rq);
} inflight SEC(".maps");

/* An fsync call between enter and exit. */
struct fsync_start {
	u64 enter_ns;
	u32 fd;
	u32 dev;
	u32 datasync;
	u32 _pad;
	char name[STORAGE_IO_NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tid */
	__type(value, struct fsync_start);
} fsyncs SEC(".maps");

static __always_inline u32 rq_dev(struct request___more *rq)
{
	struct block_device___more *part = BPF_CORE_READ(rq, part);
	struct gendisk___more *disk;

	if (part)
		return BPF_CORE_READ(part, bd_dev);
	disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return ((u32)BPF_CORE_READ(disk, major) << 20) | (u32)BPF_CORE_READ(disk, first_minor);
}

static __always_inline u32 rq_flags(u32 cmd_flags)
{
	u32 f = 0;

	if (cmd_flags & (1u << bpf_core_enum_value(enum req_flag_bits___more, __REQ_SYNC___more)))
		f |= STORAGE_IO_F_SYNC;
	if (cmd_flags & (1u << bpf_core_enum_value(enum req_flag_bits___more, __REQ_META___more)))
		f |= STORAGE_IO_F_META;
	if (cmd_flags & (1u << bpf_core_enum_value(enum req_flag_bits___more, __REQ_FUA___more)))
		f |= STORAGE_IO_F_FUA;
	if (cmd_flags &
	    (1u << bpf_core_enum_value(enum req_flag_bits___more, __REQ_PREFLUSH___more)))
		f |= STORAGE_IO_F_PREFLUSH;
	return f;
}

static __always_inline void fill_current(struct inflight_rq *s)
{
	u64 id = bpf_get_current_pid_tgid();

	s->pid = id >> 32;
	s->tid = (u32)id;
	s->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(s->comm, sizeof(s->comm));
}

SEC("tp_btf/block_io_start")
int BPF_PROG(block_io_start, struct request___more *rq)
{
	u64 key = (u64)rq;
	struct inflight_rq s = {};

	fill_current(&s);
	if (filter_tgid && s.pid != filter_tgid)
		return 0;
	s.submit_ns = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&inflight, &key, &s, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request___more *rq)
{
	u64 key = (u64)rq;
	struct inflight_rq *s = bpf_map_lookup_elem(&inflight, &key);
	struct inflight_rq fresh = {};

	if (s) {
		s->issue_ns = bpf_ktime_get_boot_ns();
		return 0;
	}
	/* Not seen at submit (flush sequences, requests older than the attach): attribute it to
	 * the issuing context. */
	fill_current(&fresh);
	if (filter_tgid && fresh.pid != filter_tgid)
		return 0;
	fresh.issue_ns = bpf_ktime_get_boot_ns();
	fresh.flags = STORAGE_IO_F_ISSUER;
	bpf_map_update_elem(&inflight, &key, &fresh, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request___more *rq, int error, unsigned int nr_bytes)
{
	u64 key = (u64)rq;
	struct inflight_rq *s = bpf_map_lookup_elem(&inflight, &key);
	struct storage_io_record *r;
	u64 now, latency;
	u32 cmd_flags;

	if (!s)
		return 0;
	if (!s->issue_ns)
		goto done; /* completed without an issue we saw */
	now = bpf_ktime_get_boot_ns();
	latency = now - s->issue_ns;
	if (latency < min_latency_ns)
		goto done;
	r = tapio_reserve(sizeof(*r), STORAGE_IO_KIND_BLOCK);
	if (!r)
		goto done;
	cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	r->latency_ns = latency;
	r->queue_ns = s->submit_ns ? s->issue_ns - s->submit_ns : 0;
	r->sector = BPF_CORE_READ(rq, __sector);
	r->cgroup_id = s->cgroup_id;
	r->dev = rq_dev(rq);
	r->bytes = nr_bytes;
	r->pid = s->pid;
	r->tid = s->tid;
	r->op = cmd_flags & ((1u << 8) - 1); /* REQ_OP_MASK: the low REQ_OP_BITS (8) bits */
	r->error = error;
	r->flags = rq_flags(cmd_flags) | s->flags;
	r->_pad = 0;
	__builtin_memcpy(r->comm, s->comm, sizeof(r->comm));
	__builtin_memset(r->name, 0, sizeof(r->name));
	tapio_submit(r);
done:
	bpf_map_delete_elem(&inflight, &key);
	return 0;
}

/* Layout of syscalls/sys_enter_fsync and sys_enter_fdatasync (their tracefs format). */
struct sys_enter_fd_ctx {
	u64 common;
	s32 syscall_nr;
	u32 _pad;
	u64 fd;
};

/* Layout of syscalls/sys_exit_*. */
struct sys_exit_ctx {
	u64 common;
	s32 syscall_nr;
	u32 _pad;
	s64 ret;
};

static __always_inline int fsync_enter(struct sys_enter_fd_ctx *ctx, u32 datasync)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct fsync_start st = {};
	struct task_struct___more *task = more_current();
	struct file___more **fds;
	struct file___more *file = NULL;
	const unsigned char *name;
	u32 max_fds;
	u64 fd;

	if (filter_tgid && (id >> 32) != filter_tgid)
		return 0;
	bpf_probe_read_kernel(&fd, sizeof(fd), &ctx->fd);
	st.enter_ns = bpf_ktime_get_boot_ns();
	st.fd = (u32)fd;
	st.datasync = datasync;
	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd < max_fds) {
		fds = BPF_CORE_READ(task, files, fdt, fd);
		bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	}
	if (file) {
		st.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
		name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
		bpf_probe_read_kernel_str(st.name, sizeof(st.name), name);
	}
	bpf_map_update_elem(&fsyncs, &tid, &st, BPF_ANY);
	return 0;
}

static __always_inline int fsync_exit(struct sys_exit_ctx *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct fsync_start *st = bpf_map_lookup_elem(&fsyncs, &tid);
	struct storage_io_record *r;
	u64 latency;
	s64 ret;

	if (!st)
		return 0;
	latency = bpf_ktime_get_boot_ns() - st->enter_ns;
	if (latency < min_latency_ns)
		goto done;
	r = tapio_reserve(sizeof(*r), STORAGE_IO_KIND_FSYNC);
	if (!r)
		goto done;
	bpf_probe_read_kernel(&ret, sizeof(ret), &ctx->ret);
	r->latency_ns = latency;
	r->queue_ns = 0;
	r->sector = 0;
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->dev = st->dev;
	r->bytes = 0;
	r->pid = id >> 32;
	r->tid = tid;
	r->op = st->fd;
	r->error = (s32)ret;
	r->flags = st->datasync ? STORAGE_IO_F_DATASYNC : 0;
	r->_pad = 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	__builtin_memcpy(r->name, st->name, sizeof(r->name));
	tapio_submit(r);
done:
	bpf_map_delete_elem(&fsyncs, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int sys_enter_fsync(struct sys_enter_fd_ctx *ctx)
{
	return fsync_enter(ctx, 0);
}

SEC("tracepoint/syscalls/sys_exit_fsync")
int sys_exit_fsync(struct sys_exit_ctx *ctx)
{
	return fsync_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int sys_enter_fdatasync(struct sys_enter_fd_ctx *ctx)
{
	return fsync_enter(ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_fdatasync")
int sys_exit_fdatasync(struct sys_exit_ctx *ctx)
{
	return fsync_exit(ctx);
}
