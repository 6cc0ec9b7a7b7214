// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * network.bpf.c: the TCP connection lifecycle, IPv4 and IPv6.
 *
 * - tp_btf/inet_sock_set_state: every TCP state change.
 *     CLOSE -> SYN_SENT (connect(2), process context): remember the owner and the start.
 *     SYN_SENT -> ESTABLISHED (usually softirq): connect record, latency since SYN_SENT.
 *     -> SYN_RECV / SYN_RECV -> ESTABLISHED (softirq): an incoming connection, owner unknown
 *        until accept(2).
 *     ESTABLISHED -> FIN_WAIT1 / CLOSE_WAIT: who closed first.
 *     SYN_SENT -> CLOSE: connect_failed record with sk_err (ECONNREFUSED, ETIMEDOUT, ...).
 *     any established state -> CLOSE: close record with duration and byte counts.
 * - tracepoint/syscalls/sys_exit_accept{,4}: the accepting process (fd -> file -> socket),
 *   accept record with the accept queue wait.
 * - tp_btf/tcp_receive_reset, tp_btf/tcp_send_reset: resets (a sent reset may have no socket:
 *   then the addresses come from the packet that caused it).
 * - tp_btf/tcp_retransmit_skb: retransmitted segments.
 *
 * State changes and retransmits often run in softirq or timer context, where the current task
 * is unrelated: the owner (pid, tid, comm, cgroup) is captured where the socket is owned
 * (connect, accept) and kept in `net_socks`, keyed by the socket's address, until CLOSE.
 */
#include "tapio.h"
#include "network.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* enum tcp_state values (stable UAPI: include/net/tcp_states.h). */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LISTEN 10

/* Set by the loader: 0 = every process, else only sockets owned by this tgid (tests). */
const volatile u32 filter_tgid = 0;

/* File descriptor -> socket, only the fields read here (CO-RE flavours). */
struct socket___net {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct file___net {
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable___net {
	unsigned int max_fds;
	struct file___net **fd;
} __attribute__((preserve_access_index));

struct files_struct___net {
	struct fdtable___net *fdt;
} __attribute__((preserve_access_index));

struct task_struct___net {
	struct files_struct___net *files;
} __attribute__((preserve_access_index));

/* The local port of a full socket: inet_sport stays set after CLOSE releases the port
 * binding (skc_num is cleared then). */
struct inet_sock___net {
	__be16 inet_sport;
} __attribute__((preserve_access_index));

/* sk_shutdown: a 2-bit bitfield before 6.4, a u8 since (read with the PROBED macro). */
struct sock___net {
	u8 sk_shutdown;
} __attribute__((preserve_access_index));

/* Byte counters of kernels >= 5.6 (checked with bpf_core_field_exists). */
struct tcp_sock___net {
	u64 bytes_sent;
	u64 bytes_retrans;
} __attribute__((preserve_access_index));

#define RCV_SHUTDOWN 1
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

/* Layout of syscalls/sys_exit_*. */
struct sys_exit_ctx {
	u64 __unused;
	long id;
	long ret;
};

/* What is known about one live socket. */
struct sock_owner {
	u64 start_ns;       /* SYN_SENT (connect) or SYN_RECV (incoming) */
	u64 established_ns; /* ESTABLISHED (0 = not yet) */
	u64 cgroup_id;
	u32 pid;
	u32 tid;
	u32 flags; /* NET_F_OWNER, NET_F_ROLE_*, NET_F_CLOSED_*, NET_F_STARTED */
	u32 last_state; /* in net_closed: the state before CLOSE */
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64); /* struct sock * */
	__type(value, struct sock_owner);
} net_socks SEC(".maps");

/* Sockets that reached CLOSE recently: a reset sent after CLOSE (SO_LINGER 0 close,
 * tcp_disconnect) is still attributed to their owner. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64); /* struct sock * */
	__type(value, struct sock_owner);
} net_closed SEC(".maps");

/* tapio_stats slot 2: sockets the owner map had no entry for (started before attach or
 * evicted); slot 3: records skipped by filter_tgid. */
#define NET_STAT_UNTRACKED TAPIO_STAT_SPARE

static __always_inline void set_owner(struct sock_owner *o)
{
	u64 id = bpf_get_current_pid_tgid();

	o->pid = id >> 32;
	o->tid = (u32)id;
	o->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(o->comm, sizeof(o->comm));
	o->flags |= NET_F_OWNER;
}

/*
 * Reads a socket field. `trusted` (a constant at every call site) says the pointer is a
 * tp_btf argument, which the verifier lets the program dereference directly (a CO-RE
 * relocated load, no helper call); a socket found by walking kernel memory (accept's fd
 * table) is read with bpf_probe_read_kernel. Only struct sock / sock_common fields: the
 * verifier refuses direct loads beyond the argument's BTF type (tcp_sock, inet_sock).
 */
#define SK_READ(trusted, sk, field) ((trusted) ? (sk)->field : BPF_CORE_READ(sk, field))

/* A full socket (not a request or timewait mini socket, which share only sock_common). */
static __always_inline bool full_sock_state(u8 state)
{
	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

/* The cgroup that created the socket (sk_cgrp_data), when the owner is unknown. */
static __always_inline u64 sock_cgroup_id(const struct sock *sk, const bool trusted)
{
	if (!full_sock_state(SK_READ(trusted, sk, __sk_common.skc_state)))
		return 0;
	if (trusted)
		return sk->sk_cgrp_data.cgroup->kn->id;
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

/* Addresses and ports of a socket (full, request or timewait: all share sock_common). */
static __always_inline void fill_addrs(struct net_record *r, const struct sock *sk,
				       const bool trusted)
{
	u16 family = SK_READ(trusted, sk, __sk_common.skc_family);
	u8 state = SK_READ(trusted, sk, __sk_common.skc_state);

	r->family = family;
	if (full_sock_state(state))
		r->sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock___net *)sk, inet_sport));
	else
		r->sport = SK_READ(trusted, sk, __sk_common.skc_num);
	r->dport = bpf_ntohs(SK_READ(trusted, sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		if (trusted) {
			__builtin_memcpy(r->saddr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8,
					 16);
			__builtin_memcpy(r->daddr, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16);
		} else {
			BPF_CORE_READ_INTO(&r->saddr, sk,
					   __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
			BPF_CORE_READ_INTO(&r->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		}
	} else {
		u32 s = SK_READ(trusted, sk, __sk_common.skc_rcv_saddr);
		u32 d = SK_READ(trusted, sk, __sk_common.skc_daddr);

		__builtin_memcpy(r->saddr, &s, 4);
		__builtin_memcpy(r->daddr, &d, 4);
	}
}

/* Payload bytes: bytes_sent - bytes_retrans (first transmissions; kernels >= 5.6, else
 * bytes_acked, which also counts the SYN and FIN), and bytes_received without the FIN. */
static __always_inline void fill_tcp(struct net_record *r, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	const struct tcp_sock___net *tpn = (const struct tcp_sock___net *)sk;
	const struct sock___net *skn = (const struct sock___net *)sk;
	u64 received = BPF_CORE_READ(tp, bytes_received);

	if (bpf_core_field_exists(tpn->bytes_sent) && bpf_core_field_exists(tpn->bytes_retrans))
		r->bytes_sent = BPF_CORE_READ(tpn, bytes_sent) - BPF_CORE_READ(tpn, bytes_retrans);
	else
		r->bytes_sent = BPF_CORE_READ(tp, bytes_acked);
	if ((BPF_CORE_READ_BITFIELD_PROBED(skn, sk_shutdown) & RCV_SHUTDOWN) && received)
		received--; /* the FIN takes one sequence number */
	r->bytes_received = received;
	r->total_retrans = BPF_CORE_READ(tp, total_retrans);
	r->srtt_us = BPF_CORE_READ(tp, srtt_us);
}

static __always_inline void fill_owner(struct net_record *r, const struct sock_owner *o,
				       const struct sock *sk, const bool trusted)
{
	if (o && (o->flags & NET_F_OWNER)) {
		r->pid = o->pid;
		r->tid = o->tid;
		r->cgroup_id = o->cgroup_id;
		__builtin_memcpy(r->comm, o->comm, sizeof(r->comm));
	} else {
		r->cgroup_id = sock_cgroup_id(sk, trusted);
	}
	if (o)
		r->flags |= o->flags;
}

/* Whether the loader's tgid filter lets a socket with this owner through. */
static __always_inline bool wanted(const struct sock_owner *o)
{
	if (!filter_tgid)
		return true;
	return o && (o->flags & NET_F_OWNER) && o->pid == filter_tgid;
}

static __always_inline struct net_record *reserve(u32 kind, const struct sock *sk, u8 oldstate,
						  u8 newstate, const bool trusted)
{
	struct net_record *r = tapio_reserve(sizeof(*r), kind);

	if (!r)
		return NULL;
	__builtin_memset((u8 *)r + sizeof(r->hdr), 0, sizeof(*r) - sizeof(r->hdr));
	r->sock = (u64)sk;
	r->oldstate = oldstate;
	r->newstate = newstate;
	if (sk)
		fill_addrs(r, sk, trusted);
	return r;
}

static __always_inline bool is_tcp(const struct sock *sk, const bool trusted)
{
	u16 family;

	if (SK_READ(trusted, sk, sk_protocol) != IPPROTO_TCP)
		return false;
	family = SK_READ(trusted, sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	u64 key = (u64)sk;
	u64 now = bpf_ktime_get_boot_ns();
	struct sock_owner *o;
	struct net_record *r;

	if (!is_tcp(sk, true))
		return 0;

	if (newstate == TCP_SYN_SENT) {
		/* connect(2): the caller owns the socket. */
		struct sock_owner fresh = { .start_ns = now,
					    .flags = NET_F_ROLE_CONNECT | NET_F_STARTED };

		set_owner(&fresh);
		bpf_map_update_elem(&net_socks, &key, &fresh, BPF_ANY);
		return 0;
	}
	if (newstate == TCP_SYN_RECV) {
		/* A child of a listener; its owner is whoever accepts it. */
		struct sock_owner fresh = { .start_ns = now,
					    .flags = NET_F_ROLE_ACCEPT | NET_F_STARTED };

		bpf_map_update_elem(&net_socks, &key, &fresh, BPF_ANY);
		return 0;
	}

	o = bpf_map_lookup_elem(&net_socks, &key);
	if (newstate == TCP_ESTABLISHED) {
		if (!o) {
			struct sock_owner fresh = { .established_ns = now };

			tapio_stat_add(NET_STAT_UNTRACKED, 1);
			fresh.flags = oldstate == TCP_SYN_SENT ? NET_F_ROLE_CONNECT :
								  NET_F_ROLE_ACCEPT;
			bpf_map_update_elem(&net_socks, &key, &fresh, BPF_ANY);
			o = bpf_map_lookup_elem(&net_socks, &key);
			if (!o)
				return 0;
		} else {
			o->established_ns = now;
		}
		if (oldstate != TCP_SYN_SENT || !wanted(o))
			return 0; /* incoming: reported at accept(2) */
		r = reserve(NET_KIND_CONNECT, sk, oldstate, newstate, true);
		if (!r)
			return 0;
		fill_owner(r, o, sk, true);
		if (o->flags & NET_F_STARTED)
			r->latency_ns = now - o->start_ns;
		r->srtt_us = BPF_CORE_READ((const struct tcp_sock *)sk, srtt_us);
		tapio_submit(r);
		return 0;
	}
	if (!o)
		return 0; /* not seen from the start: nothing to report until CLOSE */

	if (oldstate == TCP_ESTABLISHED && newstate == TCP_FIN_WAIT1) {
		o->flags |= NET_F_CLOSED_LOCAL;
		return 0;
	}
	if (oldstate == TCP_ESTABLISHED && newstate == TCP_CLOSE_WAIT) {
		o->flags |= NET_F_CLOSED_REMOTE;
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	/* CLOSE: the socket's life ends here. */
	if (oldstate == TCP_SYN_SENT && wanted(o)) {
		r = reserve(NET_KIND_CONNECT_FAILED, sk, oldstate, newstate, true);
		if (r) {
			fill_owner(r, o, sk, true);
			r->error = sk->sk_err;
			if (o->flags & NET_F_STARTED)
				r->latency_ns = now - o->start_ns;
			fill_tcp(r, sk);
			tapio_submit(r);
		}
	} else if (o->established_ns && wanted(o)) {
		r = reserve(NET_KIND_CLOSE, sk, oldstate, newstate, true);
		if (r) {
			fill_owner(r, o, sk, true);
			r->error = sk->sk_err;
			r->duration_ns = now - o->established_ns;
			fill_tcp(r, sk);
			tapio_submit(r);
		}
	}
	o->last_state = oldstate;
	bpf_map_update_elem(&net_closed, &key, o, BPF_ANY);
	bpf_map_delete_elem(&net_socks, &key);
	return 0;
}

/* The socket behind file descriptor `fd` of the current task. */
static __always_inline struct sock *fd_sock(long fd)
{
	struct task_struct___net *task = (void *)bpf_get_current_task_btf();
	struct fdtable___net *fdt = BPF_CORE_READ(task, files, fdt);
	struct file___net **fds;
	struct file___net *file = NULL;
	struct socket___net *sock;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

static __always_inline int on_accept(struct sys_exit_ctx *ctx)
{
	long fd;
	struct sock *sk;
	struct sock_owner *o;
	struct net_record *r;
	u64 key, now;
	u8 state;

	if (bpf_probe_read_kernel(&fd, sizeof(fd), &ctx->ret) || fd < 0)
		return 0;
	sk = fd_sock(fd);
	if (!sk || !is_tcp(sk, false))
		return 0;
	key = (u64)sk;
	now = bpf_ktime_get_boot_ns();
	o = bpf_map_lookup_elem(&net_socks, &key);
	if (!o) {
		struct sock_owner fresh = { .flags = NET_F_ROLE_ACCEPT };

		tapio_stat_add(NET_STAT_UNTRACKED, 1);
		bpf_map_update_elem(&net_socks, &key, &fresh, BPF_ANY);
		o = bpf_map_lookup_elem(&net_socks, &key);
		if (!o)
			return 0;
	}
	set_owner(o);
	if (!wanted(o))
		return 0;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	r = reserve(NET_KIND_ACCEPT, sk, state, state, false);
	if (!r)
		return 0;
	fill_owner(r, o, sk, false);
	if (o->established_ns) {
		r->latency_ns = now - o->established_ns;
	} else {
		r->flags &= ~NET_F_STARTED;
	}
	r->srtt_us = BPF_CORE_READ((const struct tcp_sock *)sk, srtt_us);
	tapio_submit(r);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct sys_exit_ctx *ctx)
{
	return on_accept(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct sys_exit_ctx *ctx)
{
	return on_accept(ctx);
}

/* A record about an existing socket (reset, retransmit), with its owner. A socket already
 * in CLOSE is looked up among the recently closed, and reported in its state before. */
static __always_inline struct net_record *sock_event(u32 kind, const struct sock *sk)
{
	u64 key = (u64)sk;
	struct sock_owner *o = bpf_map_lookup_elem(&net_socks, &key);
	u8 state = sk->__sk_common.skc_state;
	struct net_record *r;

	if (!o && state == TCP_CLOSE) {
		o = bpf_map_lookup_elem(&net_closed, &key);
		if (o)
			state = o->last_state;
	}
	if (!wanted(o))
		return NULL;
	r = reserve(kind, sk, state, state, true);
	if (!r)
		return NULL;
	fill_owner(r, o, sk, true);
	return r;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, struct sock *sk)
{
	struct net_record *r;

	if (!sk)
		return 0;
	r = sock_event(NET_KIND_RESET, sk);
	if (!r)
		return 0;
	fill_tcp(r, sk);
	r->flags &= ~NET_F_STARTED;
	tapio_submit(r);
	return 0;
}

/* Addresses of a reset sent for a packet that matched no socket: the packet's source is the
 * peer, its destination the local side. */
static __always_inline void fill_from_packet(struct net_record *r, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	u16 nh = BPF_CORE_READ(skb, network_header);
	u16 th = BPF_CORE_READ(skb, transport_header);
	u8 version = 0;
	u16 ports[2] = {};

	if (bpf_probe_read_kernel(&version, 1, head + nh))
		return;
	version >>= 4;
	if (version == 4) {
		r->family = AF_INET;
		bpf_probe_read_kernel(r->daddr, 4, head + nh + 12);
		bpf_probe_read_kernel(r->saddr, 4, head + nh + 16);
	} else if (version == 6) {
		r->family = AF_INET6;
		bpf_probe_read_kernel(r->daddr, 16, head + nh + 8);
		bpf_probe_read_kernel(r->saddr, 16, head + nh + 24);
	} else {
		return;
	}
	if (!bpf_probe_read_kernel(ports, sizeof(ports), head + th)) {
		r->dport = bpf_ntohs(ports[0]);
		r->sport = bpf_ntohs(ports[1]);
	}
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct net_record *r;

	if (sk) {
		r = sock_event(NET_KIND_RESET, sk);
		if (!r)
			return 0;
	} else {
		if (!skb || filter_tgid)
			return 0;
		r = reserve(NET_KIND_RESET, NULL, 0, 0, true);
		if (!r)
			return 0;
		r->flags |= NET_F_NO_SOCK;
		fill_from_packet(r, skb);
	}
	r->flags |= NET_F_RST_SENT;
	r->flags &= ~NET_F_STARTED;
	tapio_submit(r);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	struct net_record *r;

	if (!sk)
		return 0;
	r = sock_event(NET_KIND_RETRANSMIT, sk);
	if (!r)
		return 0;
	fill_tcp(r, sk);
	r->flags &= ~NET_F_STARTED;
	tapio_submit(r);
	return 0;
}
