/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Basic kernel types and the BPF UAPI (map types, helper flags) from the system headers. */
#ifndef __TAPIO_VMLINUX_TYPES_H__
#define __TAPIO_VMLINUX_TYPES_H__

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s8 s8;
typedef __s16 s16;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
typedef int pid_t;
typedef unsigned int uid_t;
typedef long long loff_t;

#define true 1
#define false 0

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	s64 counter;
} atomic64_t;

#ifndef NULL
#define NULL ((void *)0)
#endif

#endif
