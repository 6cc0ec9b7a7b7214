/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Sockets, TCP and packets: what the network and dns collectors read. */
#ifndef __TAPIO_VMLINUX_NET_H__
#define __TAPIO_VMLINUX_NET_H__

struct in6_addr {
	union {
		u8 u6_addr8[16];
		__be16 u6_addr16[8];
		__be32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

/* The kernel nests these in anonymous unions/structs; the CO-RE relocator searches them. */
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock_cgroup_data {
	struct cgroup *cgroup; /* CONFIG_SOCK_CGROUP_DATA, kernel >= 5.15 layout */
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	u16 sk_protocol; /* a plain u16 since 5.6 (a bitfield before) */
	int sk_err;
	struct sock_cgroup_data sk_cgrp_data;
} __attribute__((preserve_access_index));

struct tcp_sock {
	u64 bytes_received;
	u64 bytes_acked;
	u64 bytes_sent; /* kernel >= 5.6 */
	u32 srtt_us;
	u32 total_retrans;
} __attribute__((preserve_access_index));

struct net_device {
	int ifindex;
	char name[16];
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned int len;
	unsigned int data_len;
	__be16 protocol;
	u16 transport_header;
	u16 network_header;
	unsigned char *head;
	unsigned char *data;
} __attribute__((preserve_access_index));

#endif
