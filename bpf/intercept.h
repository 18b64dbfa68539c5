/*
 * Structs and constants shared by bpf/intercept.bpf.c and daemon/intercept.c.
 *
 * Every address is kept as 16 bytes in network order: IPv6 as is, IPv4 as the
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d). One representation means one map key
 * layout for AF_INET sockets, AF_INET6 sockets and AF_INET6 sockets that talk to
 * IPv4 peers, which is what connect6 sees for "::ffff:127.0.0.2".
 * Ports are in host order everywhere in these structs.
 */
#ifndef PGTETHER_BPF_INTERCEPT_H
#define PGTETHER_BPF_INTERCEPT_H

#define PGT_COMM_LEN 16
#define PGT_MAX_TARGETS 1024
/* Origins are filed when a redirected connection is established and taken out by
 * the daemon when it accepts it (or by sockops when the socket closes first), so
 * the map holds only connections waiting in the listener's queue: the accept
 * backlog (4096, capped by net.core.somaxconn) plus handshakes in flight, far below
 * this. A connection that finds it full is refused (pgt_stats counts them). */
#define PGT_MAX_ORIGINS 65536

/* pgt_config.flags */
#define PGT_CONFIG_ACTIVE    (1u << 0) /* set once the daemon has written the config */
#define PGT_CONFIG_FAIL_OPEN (1u << 1) /* no listener → let the connection through */

/*
 * Key of the targets LPM trie. The trie matches bit prefixes in memory order, so the
 * port comes first and must always match (prefixlen ≥ 16); the address follows and
 * matches as far as prefixlen - 16 bits. "*:5432" is prefixlen 16; "127.0.0.2:5432"
 * is 16 + 128; "127.0.0.0/8:5432" is 16 + 96 + 8.
 */
struct pgt_target_key {
	__u32 prefixlen;
	__u8 port[2];   /* network order: the trie compares bytes */
	__u8 addr[16];
};

/* Key of the origins map: the workload's end of the redirected connection. */
struct pgt_tuple {
	__u8 saddr[16]; /* workload's local address = the daemon's peer */
	__u8 daddr[16]; /* the listener the connection was redirected to */
	__u16 sport;
	__u16 dport;
};

/* What the connect hook learned about the connecting task and its destination. */
struct pgt_origin {
	__u64 sock_cookie;  /* bpf_get_socket_cookie(): checked against sock_diag */
	__u64 cgroup_id;
	__u64 netns_cookie;
	__u64 connect_ns;   /* bpf_ktime_get_boot_ns() at connect() */
	__u32 tgid;         /* process id */
	__u32 tid;          /* thread that called connect() */
	__u32 uid;
	__u32 gid;
	/* The file the task was running at connect(): mm->exe_file's inode number and
	 * its superblock's device (kernel encoding, MAJOR << 20 | MINOR). pgtetherd
	 * compares them with what it opens as /proc/PID/exe, so a process that exec'd
	 * another binary after connect() cannot pass for it. exe_ino 0: no mm (never
	 * for a user task that connects). */
	__u64 exe_ino;
	__u32 exe_dev;
	/* ... and its ctime then: a file rewritten in place after connect() (same inode,
	 * other bytes, once no process runs it) has another. */
	__u32 exe_ctime_nsec;
	__s64 exe_ctime_sec;
	__u8 dst_addr[16];  /* where the workload wanted to go */
	__u16 dst_port;
	__u16 family;       /* AF_INET or AF_INET6 of the socket */
	char comm[PGT_COMM_LEN];
	/* bpf_ktime_get_boot_ns() when the workload's socket closed (TCP_CLOSE), 0 while
	 * it is open: a client that sends a CancelRequest and closes at once may be gone
	 * (its FIN acknowledged, TIME_WAIT) before pgtetherd accepts the connection,
	 * whose bytes still wait there; the record stays until taken or expired. */
	__u64 closed_ns;
};

/* Single entry of the stats array map, written by the programs. */
struct pgt_stats {
	__u64 origins_full;      /* established redirected connections left unrecorded */
};

/* Single entry of the config array map, written by the daemon. */
struct pgt_config {
	__u32 flags;
	__u32 mark;              /* SO_MARK of the daemon's upstream sockets: never redirected */
	__u64 daemon_cgroup_id;  /* the daemon's own cgroup: never redirected */
	__u32 listen_ip4;        /* network order; the listener is IPv4 loopback */
	__u16 listen_port;
	__u16 pad;
};

#endif
