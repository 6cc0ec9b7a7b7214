/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Architecture types (x86-64 only; the objects are built with -D__TARGET_ARCH_x86). */
#ifndef __TAPIO_VMLINUX_ARCH_H__
#define __TAPIO_VMLINUX_ARCH_H__

/* x86-64 register frame (raw syscall tracepoints). */
struct pt_regs {
	unsigned long r15;
	unsigned long r14;
	unsigned long r13;
	unsigned long r12;
	unsigned long bp;
	unsigned long bx;
	unsigned long r11;
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long ax;
	unsigned long cx;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
	unsigned long ip;
	unsigned long cs;
	unsigned long flags;
	unsigned long sp;
	unsigned long ss;
} __attribute__((preserve_access_index));

#endif
