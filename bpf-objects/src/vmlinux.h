/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * vmlinux.h: the subset of kernel types the tapio BPF programs read, hand-written.
 *
 * Why not `bpftool btf dump file /sys/kernel/btf/vmlinux format c`? That dump is 2.8 MB,
 * differs from kernel to kernel (so rebuilt objects would differ byte-for-byte between
 * machines) and hides which kernel fields we depend on. Every struct here is marked
 * `preserve_access_index`: clang records each field access as a CO-RE relocation by NAME,
 * and the loader (aya) resolves it against the running kernel's BTF. So field order, sizes
 * and the fields left out do not matter; only names and kinds must match the kernel's.
 * Anonymous unions/structs of the kernel may be flattened here (the relocator searches them).
 *
 * One header per subsystem under vmlinux/; add a type to the header of its subsystem (or a
 * new header plus one include line below). Rules: no bitfields (read those with
 * BPF_CORE_READ_BITFIELD), only fields a program reads, a comment when a field was renamed
 * across kernel versions.
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#include "vmlinux/types.h"
#include "vmlinux/arch.h"
#include "vmlinux/sched.h"
#include "vmlinux/cgroup.h"
#include "vmlinux/net.h"

#endif /* __VMLINUX_H__ */
