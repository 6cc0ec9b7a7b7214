// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * dns.bpf.c: DNS messages over UDP and TCP, seen at the socket layer.
 *
 * cgroup_skb/egress and cgroup_skb/ingress programs attached to the root of the cgroup v2
 * hierarchy see every IP packet that local sockets send and receive, whatever system call
 * or library produced it (sendto, sendmsg, sendmmsg, write, io_uring...). A packet to one of
 * the configured DNS ports (egress) or from one (ingress) is copied, headers parsed, with its
 * first DNS_PAYLOAD_MAX bytes, into the ring; user space parses the DNS message, pairs
 * responses with queries (socket cookie + transaction id) and reports timeouts. Egress runs
 * in the sender's context (pid, comm); ingress often runs in softirq, so the response takes
 * the pid of its query. The programs never drop or change a packet (they return 1).
 *
 * Limits: IPv6 extension headers are not followed; over TCP, a DNS message is recognized
 * only when it starts a segment (its 2-byte length prefix first), which is how resolvers
 * send queries and how servers send responses that fit one segment.
 */
#include "tapio.h"
#include "dns.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define DNS_HEADER_LEN 12

/* Set by the loader: the watched server ports (0 = unused slot). */
const volatile u16 dns_ports[DNS_MAX_PORTS] = { 53 };

static __always_inline bool dns_port(u16 port)
{
	if (!port)
		return false;
#pragma unroll
	for (int i = 0; i < DNS_MAX_PORTS; i++) {
		if (dns_ports[i] == port)
			return true;
	}
	return false;
}

/* Minimal IPv4 header. */
struct ipv4_hdr {
	u8 ver_ihl;
	u8 tos;
	u16 tot_len;
	u16 id;
	u16 frag_off;
	u8 ttl;
	u8 protocol;
	u16 check;
	u32 saddr;
	u32 daddr;
};

struct ipv6_hdr {
	u32 ver_tc_flow;
	u16 payload_len;
	u8 nexthdr;
	u8 hop_limit;
	u8 saddr[16];
	u8 daddr[16];
};

/* Copies `len` (a constant) bytes at `off` of the packet: straight from the linear data when
 * they are there (no helper call: the common case, and what every non-DNS packet needs),
 * else with bpf_skb_load_bytes. */
static __always_inline int load(struct __sk_buff *skb, u32 off, void *to, const u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (off <= 128) {
		void *p = data + off;

		if (p + len <= data_end) {
			__builtin_memcpy(to, p, len);
			return 0;
		}
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

static __always_inline void handle(struct __sk_buff *skb, u32 kind)
{
	struct dns_record *r;
	u8 saddr[16] = {}, daddr[16] = {};
	u16 family, ports[2];
	u32 l4, payload_off, len = skb->len;
	u8 protocol;
	u32 message_len;
	u64 n;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct ipv4_hdr ip;

		if (load(skb, 0, &ip, sizeof(ip)))
			return;
		if (ip.frag_off & bpf_htons(0x1fff))
			return; /* a later fragment: no transport header */
		family = AF_INET;
		protocol = ip.protocol;
		l4 = (ip.ver_ihl & 0x0f) * 4;
		__builtin_memcpy(saddr, &ip.saddr, 4);
		__builtin_memcpy(daddr, &ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6_hdr ip6;

		if (load(skb, 0, &ip6, sizeof(ip6)))
			return;
		family = AF_INET6;
		protocol = ip6.nexthdr;
		l4 = sizeof(ip6);
		__builtin_memcpy(saddr, ip6.saddr, 16);
		__builtin_memcpy(daddr, ip6.daddr, 16);
	} else {
		return;
	}
	if (protocol != IPPROTO_UDP && protocol != IPPROTO_TCP)
		return;
	if (load(skb, l4, ports, sizeof(ports)))
		return;
	ports[0] = bpf_ntohs(ports[0]);
	ports[1] = bpf_ntohs(ports[1]);
	if (kind == DNS_KIND_EGRESS ? !dns_port(ports[1]) : !dns_port(ports[0]))
		return;

	if (protocol == IPPROTO_UDP) {
		payload_off = l4 + 8;
		if (len <= payload_off)
			return;
		message_len = len - payload_off;
	} else {
		u8 doff = 0;
		u16 prefix = 0;

		if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1))
			return;
		payload_off = l4 + (doff >> 4) * 4;
		if (len < payload_off + 2 + DNS_HEADER_LEN)
			return; /* SYN, ACK, FIN, or too short to start a message */
		if (bpf_skb_load_bytes(skb, payload_off, &prefix, 2))
			return;
		message_len = bpf_ntohs(prefix);
		payload_off += 2;
	}
	if (message_len < DNS_HEADER_LEN)
		return;

	r = tapio_reserve(sizeof(*r), kind);
	if (!r)
		return;
	__builtin_memset((u8 *)r + sizeof(r->hdr), 0, sizeof(*r) - sizeof(r->hdr) - DNS_PAYLOAD_MAX);
	r->cookie = bpf_get_socket_cookie(skb);
	r->cgroup_id = bpf_skb_cgroup_id(skb);
	__builtin_memcpy(r->saddr, saddr, 16);
	__builtin_memcpy(r->daddr, daddr, 16);
	r->sport = ports[0];
	r->dport = ports[1];
	r->family = family;
	r->protocol = protocol;
	r->message_len = message_len;
	if (kind == DNS_KIND_EGRESS) {
		u64 id = bpf_get_current_pid_tgid();

		r->pid = id >> 32;
		r->tid = (u32)id;
		bpf_get_current_comm(r->comm, sizeof(r->comm));
	}
	n = len - payload_off;
	if (n > message_len)
		n = message_len;
	if (n > DNS_PAYLOAD_MAX)
		n = DNS_PAYLOAD_MAX;
	/* Bound the register the helper gets, whatever copy of n the compiler passes. */
	asm volatile("%[n] &= 0x1ff" : [n] "+r"(n));
	if (n < DNS_HEADER_LEN || n > DNS_PAYLOAD_MAX ||
	    bpf_skb_load_bytes(skb, payload_off, r->payload, n)) {
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		tapio_stat_add(TAPIO_STAT_SPARE, 1); /* unreadable: counted, not delivered */
		return;
	}
	r->captured = n;
	tapio_submit(r);
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	handle(skb, DNS_KIND_EGRESS);
	return 1;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	handle(skb, DNS_KIND_INGRESS);
	return 1;
}
