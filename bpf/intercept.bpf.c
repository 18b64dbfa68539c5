// SPDX-License-Identifier: GPL-2.0
/*
 * Transparent interception of PostgreSQL-bound TCP connections.
 *
 * connect4/connect6 run in the context of the task calling connect(): the only moment
 * its identity (pid, uid, cgroup, comm) is at hand. When the destination is a target
 * they store that identity in socket-local storage and rewrite the destination to
 * pgtetherd's listener. sockops then sees the connection established, knows its final
 * 4-tuple, and files the record in `origins` under that tuple for the daemon to take
 * (lookup and delete) after accept(); it removes the entry itself when the socket
 * reaches TCP_CLOSE first, so the map holds only live redirected connections the
 * daemon has not accepted yet, however many a workload keeps open. Socket storage dies with the socket,
 * so a connect() that never completes leaves nothing behind.
 *
 * getpeername4/getpeername6 give a redirected socket's original destination back to
 * its workload.
 *
 * Helpers used need Linux 5.7+ (bpf_get_netns_cookie in sock_addr programs), the
 * getpeername hooks 5.8+; the kernel this project targets is far newer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "intercept.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define TCP_CLOSE 7

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pgt_config);
} pgt_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pgt_stats);
} pgt_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PGT_MAX_TARGETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pgt_target_key);
	__type(value, __u32);
} pgt_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pgt_origin);
} pgt_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PGT_MAX_ORIGINS);
	__type(key, struct pgt_tuple);
	__type(value, struct pgt_origin);
} pgt_origins SEC(".maps");

static __always_inline void set_mapped4(__u8 out[16], __u32 ip4)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &ip4, 4);
}

static __always_inline void set_ip6(__u8 out[16], __u32 w0, __u32 w1, __u32 w2, __u32 w3)
{
	__builtin_memcpy(out, &w0, 4);
	__builtin_memcpy(out + 4, &w1, 4);
	__builtin_memcpy(out + 8, &w2, 4);
	__builtin_memcpy(out + 12, &w3, 4);
}

/* The executable's identity (see struct pgt_origin). BTF pointer walks: a NULL on
 * the way reads as 0, which the daemon refuses. */
static __always_inline void exe_of_current(struct pgt_origin *rec)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	struct file *f;
	struct inode *ino;

	rec->exe_ino = 0;
	rec->exe_dev = 0;
	rec->exe_ctime_sec = 0;
	rec->exe_ctime_nsec = 0;
	if (!mm)
		return;
	f = mm->exe_file;
	if (!f)
		return;
	ino = f->f_inode;
	if (!ino)
		return;
	rec->exe_ino = ino->i_ino;
	rec->exe_dev = ino->i_sb->s_dev;
	/* i_ctime_sec/_nsec since Linux 6.11 (what stat() reports as st_ctim); the top
	 * bit of _nsec is I_CTIME_QUERIED of multigrain timestamps (6.13), not time */
	rec->exe_ctime_sec = ino->i_ctime_sec;
	rec->exe_ctime_nsec = ino->i_ctime_nsec & ~(1u << 31);
}

/* Decides and, for a target, records and rewrites. Always returns 1: a hook that
 * returned 0 would fail the connect() with EPERM, which is not ours to decide here. */
static __always_inline int intercept(struct bpf_sock_addr *ctx, const __u8 dst[16],
				     __u16 dst_port, bool ipv6_sock)
{
	struct pgt_target_key tk = {};
	struct pgt_origin *rec;
	struct pgt_config *cfg;
	struct bpf_sock *sk;
	__u32 zero = 0;
	__u64 id;

	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 1;
	cfg = bpf_map_lookup_elem(&pgt_config, &zero);
	if (!cfg || !(cfg->flags & PGT_CONFIG_ACTIVE))
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	/* Loop guard: the daemon's own upstream sockets and everything in its cgroup. */
	if (cfg->mark && sk->mark == cfg->mark)
		return 1;
	if (bpf_get_current_cgroup_id() == cfg->daemon_cgroup_id)
		return 1;

	tk.prefixlen = 16 + 128;
	tk.port[0] = dst_port >> 8;
	tk.port[1] = dst_port & 0xff;
	__builtin_memcpy(tk.addr, dst, 16);
	if (!bpf_map_lookup_elem(&pgt_targets, &tk))
		return 1;

	if (cfg->flags & PGT_CONFIG_FAIL_OPEN) {
		/* fail_mode "open": only redirect while a listener exists. */
		struct bpf_sock_tuple t = {};
		struct bpf_sock *l;

		t.ipv4.daddr = cfg->listen_ip4;
		t.ipv4.dport = bpf_htons(cfg->listen_port);
		l = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!l)
			return 1;
		bpf_sk_release(l);
	}

	rec = bpf_sk_storage_get(&pgt_pending, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!rec)
		return 1; /* out of memory: the connection goes on, unrecorded and direct */

	id = bpf_get_current_pid_tgid();
	rec->sock_cookie = bpf_get_socket_cookie(ctx);
	rec->cgroup_id = bpf_get_current_cgroup_id();
	rec->netns_cookie = bpf_get_netns_cookie(ctx);
	rec->connect_ns = bpf_ktime_get_boot_ns();
	rec->tgid = id >> 32;
	rec->tid = (__u32)id;
	id = bpf_get_current_uid_gid();
	rec->uid = (__u32)id;
	rec->gid = id >> 32;
	__builtin_memcpy(rec->dst_addr, dst, 16);
	rec->dst_port = dst_port;
	rec->family = ipv6_sock ? AF_INET6 : AF_INET;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	exe_of_current(rec);

	if (ipv6_sock) {
		/* The listener is IPv4: a dual-stack socket reaches it as ::ffff:a.b.c.d.
		 * An IPV6_V6ONLY socket cannot, and its connect() fails with ENETUNREACH:
		 * closed, never direct. */
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = cfg->listen_ip4;
	} else {
		ctx->user_ip4 = cfg->listen_ip4;
	}
	ctx->user_port = bpf_htons(cfg->listen_port);
	return 1;
}

SEC("cgroup/connect4")
int pgt_connect4(struct bpf_sock_addr *ctx)
{
	__u8 dst[16];

	set_mapped4(dst, ctx->user_ip4);
	return intercept(ctx, dst, bpf_ntohs(ctx->user_port), false);
}

SEC("cgroup/connect6")
int pgt_connect6(struct bpf_sock_addr *ctx)
{
	__u8 dst[16];

	/* An IPv4-mapped destination is kept mapped: that is how IPv4 is keyed. */
	set_ip6(dst, ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]);
	return intercept(ctx, dst, bpf_ntohs(ctx->user_port), true);
}

/*
 * getpeername() of a redirected socket tells the workload where it wanted to go, not
 * the listener: drivers dial the peer address again for a CancelRequest (pgx/pgconn
 * take it from net.Conn.RemoteAddr()), and a dial of the listener itself has no
 * origin, so pgtetherd refuses it and the cancel is lost. The record in socket
 * storage lives as long as the socket, so the peer the kernel reports must still be
 * the listener: a socket disconnected (AF_UNSPEC) and connected elsewhere keeps its
 * real peer. Linux 5.8+.
 */
static __always_inline struct pgt_origin *redirected(struct bpf_sock_addr *ctx, __u32 peer_ip4)
{
	struct pgt_config *cfg;
	__u32 zero = 0;

	if (!ctx->sk)
		return NULL;
	cfg = bpf_map_lookup_elem(&pgt_config, &zero);
	if (!cfg || peer_ip4 != cfg->listen_ip4 || ctx->user_port != bpf_htons(cfg->listen_port))
		return NULL;
	return bpf_sk_storage_get(&pgt_pending, ctx->sk, 0, 0);
}

SEC("cgroup/getpeername4")
int pgt_getpeername4(struct bpf_sock_addr *ctx)
{
	struct pgt_origin *rec = redirected(ctx, ctx->user_ip4);
	__u32 ip4;

	if (!rec || rec->family != AF_INET)
		return 1;
	__builtin_memcpy(&ip4, rec->dst_addr + 12, 4);
	ctx->user_ip4 = ip4;
	ctx->user_port = bpf_htons(rec->dst_port);
	return 1;
}

SEC("cgroup/getpeername6")
int pgt_getpeername6(struct bpf_sock_addr *ctx)
{
	struct pgt_origin *rec = NULL;
	__u32 w[4];

	/* the listener is IPv4: a dual-stack socket has it as ::ffff:a.b.c.d */
	if (ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 && ctx->user_ip6[2] == bpf_htonl(0x0000ffff))
		rec = redirected(ctx, ctx->user_ip6[3]);
	if (!rec || rec->family != AF_INET6)
		return 1;
	/* as connect6 saw it: an IPv4-mapped destination stays mapped */
	__builtin_memcpy(w, rec->dst_addr, 16);
	ctx->user_ip6[0] = w[0];
	ctx->user_ip6[1] = w[1];
	ctx->user_ip6[2] = w[2];
	ctx->user_ip6[3] = w[3];
	ctx->user_port = bpf_htons(rec->dst_port);
	return 1;
}

static __always_inline void tuple_of(struct bpf_sock_ops *skops, struct pgt_tuple *t)
{
	if (skops->family == AF_INET) {
		set_mapped4(t->saddr, skops->local_ip4);
		set_mapped4(t->daddr, skops->remote_ip4);
	} else {
		set_ip6(t->saddr, skops->local_ip6[0], skops->local_ip6[1],
			skops->local_ip6[2], skops->local_ip6[3]);
		set_ip6(t->daddr, skops->remote_ip6[0], skops->remote_ip6[1],
			skops->remote_ip6[2], skops->remote_ip6[3]);
	}
	t->sport = skops->local_port;                /* host order */
	t->dport = bpf_ntohl(skops->remote_port);    /* network order, in the upper half */
}

SEC("sockops")
int pgt_sockops(struct bpf_sock_ops *skops)
{
	struct pgt_tuple t = {};
	struct pgt_origin *rec;
	struct bpf_sock *sk;

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		sk = skops->sk;
		if (!sk)
			return 1;
		rec = bpf_sk_storage_get(&pgt_pending, sk, 0, 0);
		if (!rec)
			return 1;
		tuple_of(skops, &t);
		if (bpf_map_update_elem(&pgt_origins, &t, rec, BPF_ANY) == 0) {
			/* Without the close callback a closed socket's entry would wait the
			 * long expiry of one the listen queue dropped: take it back, fail
			 * closed. */
			if (bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						      BPF_SOCK_OPS_STATE_CB_FLAG) != 0)
				bpf_map_delete_elem(&pgt_origins, &t);
		} else {
			/* A full map leaves no entry: the daemon refuses the connection,
			 * and this count lets it say why. */
			__u32 zero = 0;
			struct pgt_stats *st = bpf_map_lookup_elem(&pgt_stats, &zero);

			if (st)
				__sync_fetch_and_add(&st->origins_full, 1);
		}
		break;
	case BPF_SOCK_OPS_STATE_CB:
		/* Marked, not deleted: the connection may still wait in the listen queue
		 * with bytes for pgtetherd (a CancelRequest sent and closed at once), and
		 * who made it must be known when it is accepted. pgtetherd deletes marked
		 * records it has not taken after SESSION_ORIGIN_CLOSED_S. */
		if (skops->args[1] == TCP_CLOSE) {
			tuple_of(skops, &t);
			rec = bpf_map_lookup_elem(&pgt_origins, &t);
			if (rec && rec->sock_cookie == bpf_get_socket_cookie(skops))
				rec->closed_ns = bpf_ktime_get_boot_ns();
		}
		break;
	}
	return 1;
}
