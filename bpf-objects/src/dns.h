/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Record layout of dns.bpf.c, mirrored by plugins/dns/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_DNS_H__
#define __TAPIO_DNS_H__

#include "tapio.h"

/* Bytes of the DNS message copied into a record: the 12-byte header and the question (a
 * name of up to 243 bytes fits). The parser in user space reads only these. */
#define DNS_PAYLOAD_MAX 256
/* Ports watched (0 = unused slot). */
#define DNS_MAX_PORTS 8

/* Record kinds (header.kind). */
#define DNS_KIND_EGRESS 1  /* a packet sent by a local socket to a DNS port: a query */
#define DNS_KIND_INGRESS 2 /* a packet from a DNS port delivered to a local socket: a response */

struct dns_record {
	struct tapio_record_header hdr;
	u64 cookie;      /* socket cookie (bpf_get_socket_cookie): pairs a response with its query */
	u64 cgroup_id;   /* v2 cgroup id of the socket (bpf_skb_cgroup_id) */
	u8 saddr[16];    /* packet source address (IPv4: first 4 bytes), network order */
	u8 daddr[16];    /* packet destination address */
	u32 pid;         /* egress: the sending task's tgid (0 = unknown); ingress: 0 */
	u32 tid;         /* egress: the sending thread */
	u16 sport;       /* packet source port, host order */
	u16 dport;       /* packet destination port, host order */
	u16 family;      /* AF_INET (2) or AF_INET6 (10) */
	u8 protocol;     /* IPPROTO_UDP (17) or IPPROTO_TCP (6) */
	u8 _pad;
	u32 message_len; /* length of the DNS message in the packet */
	u32 captured;    /* bytes of it in `payload` (<= DNS_PAYLOAD_MAX) */
	char comm[TASK_COMM_LEN]; /* egress: the sending task's comm */
	u8 payload[DNS_PAYLOAD_MAX];
};
TAPIO_ASSERT_SIZE(struct dns_record, 360);
TAPIO_ASSERT_OFFSET(struct dns_record, saddr, 32);
TAPIO_ASSERT_OFFSET(struct dns_record, pid, 64);
TAPIO_ASSERT_OFFSET(struct dns_record, sport, 72);
TAPIO_ASSERT_OFFSET(struct dns_record, protocol, 78);
TAPIO_ASSERT_OFFSET(struct dns_record, message_len, 80);
TAPIO_ASSERT_OFFSET(struct dns_record, comm, 88);
TAPIO_ASSERT_OFFSET(struct dns_record, payload, 104);

#endif
