/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Record layout of network.bpf.c, mirrored by plugins/network/src/record.rs
 * (`#[repr(C)]`, size and offsets asserted on both sides). */
#ifndef __TAPIO_NETWORK_H__
#define __TAPIO_NETWORK_H__

#include "tapio.h"

/* Record kinds (header.kind). */
#define NET_KIND_CONNECT 1        /* SYN_SENT -> ESTABLISHED: latency = connect latency */
#define NET_KIND_ACCEPT 2         /* accept(2) returned the socket: latency = accept queue wait */
#define NET_KIND_CLOSE 3          /* an established connection reached CLOSE: duration, bytes */
#define NET_KIND_CONNECT_FAILED 4 /* SYN_SENT -> CLOSE: error = sk_err (ECONNREFUSED, ...) */
#define NET_KIND_RESET 5          /* RST received or sent (flags say which) */
#define NET_KIND_RETRANSMIT 6     /* one retransmitted segment */

/* Bits of `flags`. */
#define NET_F_OWNER 0x1          /* pid / tid / comm are the socket's owner (connect/accept) */
#define NET_F_ROLE_CONNECT 0x2   /* the socket was opened by connect(2) */
#define NET_F_ROLE_ACCEPT 0x4    /* the socket was accepted from a listener */
#define NET_F_CLOSED_LOCAL 0x8   /* close: this side sent the first FIN */
#define NET_F_CLOSED_REMOTE 0x10 /* close: the peer sent the first FIN */
#define NET_F_RST_SENT 0x20      /* reset: sent by this host (else received) */
#define NET_F_NO_SOCK 0x40       /* reset: sent for a packet that matched no socket */
#define NET_F_STARTED 0x80       /* start time known (latency / duration valid) */

struct net_record {
	struct tapio_record_header hdr;
	u64 sock;           /* kernel socket address: identifies one connection while it lives */
	u64 cgroup_id;      /* v2 cgroup id of the owner (else of the socket's creator) */
	u64 latency_ns;     /* connect: SYN_SENT -> ESTABLISHED; accept: ESTABLISHED -> accept(2);
			     * connect_failed: SYN_SENT -> CLOSE */
	u64 duration_ns;    /* close: ESTABLISHED -> CLOSE */
	u64 bytes_sent;     /* close: payload bytes sent, first transmissions (bytes_sent -
			     * bytes_retrans; bytes_acked before 5.6) */
	u64 bytes_received; /* close: payload bytes received (bytes_received without the FIN) */
	u8 saddr[16];       /* local address (IPv4: first 4 bytes), network order */
	u8 daddr[16];       /* peer address */
	u32 pid;            /* owner's tgid (0 = unknown) */
	u32 tid;            /* owner's thread id */
	u16 sport;          /* local port, host order */
	u16 dport;          /* peer port, host order */
	u16 family;         /* AF_INET (2) or AF_INET6 (10) */
	u8 oldstate;        /* TCP state before the transition (reset/retransmit: current) */
	u8 newstate;        /* TCP state after the transition */
	s32 error;          /* sk_err at the transition (positive errno, 0 = none) */
	u32 total_retrans;  /* segments retransmitted over the connection's life */
	u32 srtt_us;        /* smoothed RTT (tcp_sock.srtt_us, in 1/8 us) */
	u32 flags;          /* NET_F_* */
	char comm[TASK_COMM_LEN];
};
TAPIO_ASSERT_SIZE(struct net_record, 144);
TAPIO_ASSERT_OFFSET(struct net_record, sock, 16);
TAPIO_ASSERT_OFFSET(struct net_record, saddr, 64);
TAPIO_ASSERT_OFFSET(struct net_record, daddr, 80);
TAPIO_ASSERT_OFFSET(struct net_record, pid, 96);
TAPIO_ASSERT_OFFSET(struct net_record, sport, 104);
TAPIO_ASSERT_OFFSET(struct net_record, oldstate, 110);
TAPIO_ASSERT_OFFSET(struct net_record, error, 112);
TAPIO_ASSERT_OFFSET(struct net_record, flags, 124);
TAPIO_ASSERT_OFFSET(struct net_record, comm, 128);

#endif
