/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * tapio.h: what every tapio BPF program shares.
 *
 * - `events`: the ring buffer records go to (size set by the loader, `tapio_wakeup_bytes`
 *   decides when a submit wakes the reader).
 * - `tapio_stats`: per-CPU counters of records produced (reserve attempts) and dropped
 *   (reserve failures: the ring was full). The reader adds delivered records; after a
 *   quiescent drain, produced == delivered + dropped exactly.
 * - `struct tapio_record_header`: the first 16 bytes of every record, mirrored by
 *   `tapio_ebpf_support::RecordHeader`.
 *
 * Layout rule for every record: fixed-size `#[repr(C)]`-compatible structs, fields ordered
 * largest first or explicitly padded, and a `_Static_assert` on the size and on the offset
 * of each field after a variable-width one; the Rust mirror asserts the same numbers.
 */
#ifndef __TAPIO_H__
#define __TAPIO_H__

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* offsetof without stddef.h. */
#define tapio_offsetof(type, field) __builtin_offsetof(type, field)
/* Asserts a record's size and field offsets at compile time (mirrored in Rust). */
#define TAPIO_ASSERT_SIZE(type, size) \
	_Static_assert(sizeof(type) == (size), "size of " #type " changed: update the Rust mirror")
#define TAPIO_ASSERT_OFFSET(type, field, off)                                                  \
	_Static_assert(tapio_offsetof(type, field) == (off),                                   \
		       "offset of " #type "." #field " changed: update the Rust mirror")

/* Header of every record. */
struct tapio_record_header {
	u32 kind; /* program-specific record kind */
	u32 cpu; /* CPU that produced it */
	u64 ts_boot_ns; /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME */
};
TAPIO_ASSERT_SIZE(struct tapio_record_header, 16);
TAPIO_ASSERT_OFFSET(struct tapio_record_header, ts_boot_ns, 8);

/* Indices of `tapio_stats`. */
enum tapio_stat {
	TAPIO_STAT_PRODUCED = 0, /* records a program tried to reserve */
	TAPIO_STAT_DROPPED = 1, /* reservations that failed: ring full */
	TAPIO_STAT_SPARE = 2, /* program-specific (rate limited, map full, ...) */
	TAPIO_STAT_SPARE2 = 3,
	TAPIO_STAT_COUNT = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAPIO_STAT_COUNT);
	__type(key, u32);
	__type(value, u64);
} tapio_stats SEC(".maps");

/* The ring; 1 MiB unless the loader overrides max_entries (a power-of-two page multiple). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/*
 * Batched wakeups: a submit wakes the reader only when at least this many bytes are pending
 * (BPF_RB_FORCE_WAKEUP); otherwise it submits with BPF_RB_NO_WAKEUP and the reader's timer
 * collects the batch. Set by the loader; 0 = wake on every record.
 */
const volatile u64 tapio_wakeup_bytes = 0;

static __always_inline void tapio_stat_add(u32 index, u64 n)
{
	u64 *value = bpf_map_lookup_elem(&tapio_stats, &index);

	if (value)
		*value += n; /* per-CPU slot: no atomics needed */
}

/* Reserves a record of `size` bytes and fills its header; NULL (and counted) if full. */
static __always_inline void *tapio_reserve(u64 size, u32 kind)
{
	struct tapio_record_header *hdr;

	tapio_stat_add(TAPIO_STAT_PRODUCED, 1);
	hdr = bpf_ringbuf_reserve(&events, size, 0);
	if (!hdr) {
		tapio_stat_add(TAPIO_STAT_DROPPED, 1);
		return NULL;
	}
	hdr->kind = kind;
	hdr->cpu = bpf_get_smp_processor_id();
	hdr->ts_boot_ns = bpf_ktime_get_boot_ns();
	return hdr;
}

/* Submits a reserved record, waking the reader only past the batch threshold. */
static __always_inline void tapio_submit(void *record)
{
	u64 flags = BPF_RB_NO_WAKEUP;

	if (tapio_wakeup_bytes == 0 ||
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= tapio_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(record, flags);
}

/* Process id (thread-group id) of the current task. */
static __always_inline u32 tapio_current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

#endif /* __TAPIO_H__ */
