/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* bench.bpf.c records: a fixed 64-byte record for ring-buffer throughput benchmarks. */
#ifndef __TAPIO_BENCH_H__
#define __TAPIO_BENCH_H__

#include "tapio.h"

#define BENCH_KIND_RECORD 1

struct bench_record {
	struct tapio_record_header hdr;
	u64 seq;
	u64 payload[5];
};
TAPIO_ASSERT_SIZE(struct bench_record, 64);
TAPIO_ASSERT_OFFSET(struct bench_record, seq, 16);

#endif
