/*
 * The daemon's configuration, /etc/pgtether/pgtether.json (DESIGN.md "Public
 * interface"). A loaded config is an immutable snapshot: the daemon swaps it whole
 * and never edits one in place.
 */
#ifndef PGTETHER_CONFIG_H
#define PGTETHER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "jsonpos.h"
#include <stdint.h>

#include "addr.h"
#include "issuers.h"
#include "policy.h"
#include "scram.h"

#define CONFIG_DEFAULT_PATH "/etc/pgtether/pgtether.json"
#define CONFIG_MAX_BYTES (1u << 20)   /* a config bigger than 1 MiB is a mistake */
#define CONFIG_MAX_TARGETS 256
#define CONFIG_MAX_CGROUPS 256
#define CONFIG_ERR_LEN JSONPOS_ERR_LEN

enum config_fail_mode { CONFIG_FAIL_CLOSED, CONFIG_FAIL_OPEN };

#define CONFIG_MAX_UPSTREAMS 64
#define CONFIG_MAX_ROLES 64
#define CONFIG_MAX_ALIASES 16
#define CONFIG_MAX_RESOLVED 16      /* addresses of a name kept (and tried) in order */
#define CONFIG_NAME_MAX 63          /* PostgreSQL's NAMEDATALEN - 1, for role names */
#define CONFIG_MAX_WORKERS 64

enum config_tls { CONFIG_TLS_DISABLE, CONFIG_TLS_REQUIRE, CONFIG_TLS_VERIFY_FULL };

/* The logins pgtether answers for an upstream ("auth_methods"): what each gives a
 * worker is a SCRAM proof for one exchange, an md5 hash salted as the worker asks
 * (cheap to try passwords on), or the password itself. */
enum config_auth {
	CONFIG_AUTH_SCRAM = 1u << 0,    /* "scram-sha-256", the default */
	CONFIG_AUTH_MD5 = 1u << 1,      /* "md5" */
	CONFIG_AUTH_PASSWORD = 1u << 2, /* "password": cleartext, over tls verify-full only */
};

/* The name of one CONFIG_AUTH_ method, as auth_methods and pg_hba.conf write it. */
const char *config_auth_name(unsigned method);

struct ssl_ctx_st;

/* A role of an upstream and the held credential pgtetherd logs in with. */
struct config_role {
	char *name;
	char *password;                 /* from credentials_file; wiped on release */
	/* SCRAM salted password of the last login: the one mutable part of the
	 * snapshot, a cache that a reload simply starts afresh. */
	struct scram_keycache keycache;
};

/* A database pgtetherd logs in to, and the roles it holds credentials for. */
struct config_upstream {
	char *name;
	char *host;                     /* the host part of "address" as written */
	bool named;                     /* host is a name, resolved by config_resolve() */
	struct addr address;            /* resolved: the first address of host */
	struct addr *resolved;          /* what host resolved to, at most CONFIG_MAX_RESOLVED
					 * (names only) */
	size_t n_resolved;
	struct addr *aliases;
	size_t n_aliases;
	enum config_tls tls;
	unsigned auth_methods;          /* CONFIG_AUTH_* it may ask for */
	char *ca_file;
	char *role;                     /* the role a rule without "role" logs in as */
	struct config_role *roles;      /* every role credentials_file holds for it */
	size_t n_roles;
	struct ssl_ctx_st *ssl_ctx;     /* built by tls_prepare() when tls is on */
};

struct config {
	char *path;                    /* file it was read from */
	struct addr listen;            /* IPv4: the BPF redirect rewrites to it */
	struct addr_target *targets;
	size_t n_targets;
	char **cgroups;                /* normalized paths below the cgroup2 mount */
	size_t n_cgroups;
	enum config_fail_mode fail_mode;
	char *bpffs_dir;
	char *control_socket;
	char *approvers_group;         /* may approve through control_socket; NULL: root alone */
	uint32_t socket_mark;          /* SO_MARK of upstream sockets (loop guard) */
	struct config_upstream *upstreams;
	size_t n_upstreams;
	char *credentials_file;
	char *policy_dir;
	char *issuers_dir;
	char *sessions_dir;            /* session recordings; NULL: not recorded */
	bool recording_fail_open;      /* a recording that fails is not a refusal */
	bool recording_fsync;          /* fsync after every statement */
	char *mask_key_file;           /* key of "hash" masks (root's alone) */
	uint8_t mask_key[MASK_KEY_LEN]; /* SHA-256 of that file, when a rule hashes */
	bool have_mask_key;
	struct mask_hmac *mask_hmac;      /* keyed with it once (mask_hmac_new) */
	struct policy policy;          /* loaded by config_load from policy_dir */
	struct issuers issuers;        /* loaded by config_load from issuers_dir */
	uint32_t max_message_bytes;    /* largest protocol message accepted */
	unsigned login_timeout;        /* seconds from accept to the relay starting */
	unsigned mask_refresh;         /* seconds: masked sessions resolve their masks again */
	uint32_t max_statement_bytes;  /* longest SQL text a rule with statements checks */
	unsigned max_logins;           /* connections between accept and the relay, in all */
	unsigned max_logins_per_cgroup; /* ... from one attached cgroup (and its children) */
	size_t memory_budget;          /* bytes all sessions may grow beyond their buffers */
	char *client_tls_cert;         /* client_tls: terminate TLS from clients */
	char *client_tls_key;
	struct ssl_ctx_st *client_ssl_ctx; /* built by tls_prepare() */
	unsigned workers;              /* unprivileged worker processes (needs a restart) */
	char *worker_user;             /* the user they run as, never root (needs a restart) */
};

/*
 * Reads and validates path into ret. On error returns a negative errno and writes
 * "path:line:col: message" into err (CONFIG_ERR_LEN bytes); ret is untouched.
 */
int config_load(const char *path, struct config *ret, char *err);

/*
 * config_load through a configuration source (cfgsrc.h): the parent loads with a
 * recording source and sends it to the workers, which load with its replay and
 * CONFIG_LOAD_WORKER. That flag reads no credentials_file (each upstream holds the
 * roles a session can log in as, each with password NULL; the parent checked the
 * same rules against the credentials) and resolves no host name (no DNS in a worker:
 * the parent gives the addresses of each connection); the rest is the same load, so
 * both end with the same rules in the same order. src NULL is config_load.
 */
#define CONFIG_LOAD_WORKER 1u
struct cfgsrc;
int config_load_src(const char *path, struct cfgsrc *src, unsigned flags, struct config *ret, char *err);

/* Reads credentials_file into c's roles (see config_parse_credentials), after
 * checking that only its owner, root, can read it. 0 or -errno with err. */
int config_load_credentials(struct config *c, char *err);

/* Reads mask_key_file into c->mask_key when a rule of c->policy masks with "hash":
 * owned by root, mode 0600 or stricter, at least 32 bytes. 0 or -errno with err. */
int config_load_mask_key(struct config *c, char *err);

/* Reads and validates the file alone: no credentials, names or policy (the CLI's view). */
int config_load_file(const char *path, struct config *ret, char *err);

/* Parses an in-memory text; `name` is used in messages. Same contract as above. */
int config_parse(const char *name, const char *text, size_t len, struct config *ret, char *err);

/*
 * Fills the roles of c's upstreams from a credentials text ({"UPSTREAM": {"ROLE":
 * "PASSWORD"}}); `name` is used in messages. Every upstream needs at least its own
 * role's password; every role listed is held. Same error contract as config_parse.
 * config_load calls it after checking that the file is owned by root and not
 * readable by group or others.
 */
int config_parse_credentials(struct config *c, const char *name, const char *text, size_t len, char *err);

/*
 * Resolves the upstreams whose address is a host name (getaddrinfo, TCP, IPv4 and
 * IPv6): every address it has then selects that upstream. A name that does not
 * resolve is an error. config_load calls it; the result holds until the next load,
 * so a DNS change needs a reload.
 */
int config_resolve(struct config *c, char *err);

/*
 * Checks that every rule of c->policy can be carried out: its upstream exists, the
 * role it grants has a credential, and its issuer is one of c->issuers. A rule that
 * names what is not there would refuse every connection it is meant to allow, so it
 * is an error at load ("file:line: rule 'x': ..."). config_load calls it.
 */
int config_check_policy(const struct config *c, char *err);

/* How many workers to run: "workers", or by default one per online CPU (1 to
 * CONFIG_MAX_WORKERS). */
unsigned config_workers(const struct config *c);

/* The upstream named name, or NULL. */
struct config_upstream *config_upstream_named(const struct config *c, const char *name);

/* Whether the upstream named name lists method (CONFIG_AUTH_*) in auth_methods. */
bool config_upstream_allows(const struct config *c, const char *name, unsigned method);

/* The held role of u named name, or NULL. */
struct config_role *config_role_for(const struct config_upstream *u, const char *name);

/* The upstream whose address, resolved addresses or aliases equal dst, or NULL. */
struct config_upstream *config_upstream_for(const struct config *c, const struct addr *dst);

/*
 * The addresses pgtetherd connects to for u, in the order to try them: what its
 * "address" resolved to, or the literal address itself. Never an alias, nor the
 * destination the workload dialed: an alias only selects the upstream. Points *ret
 * at them (they live as long as c) and returns how many, 1 to CONFIG_MAX_RESOLVED.
 */
size_t config_upstream_addrs(const struct config_upstream *u, const struct addr **ret);

/* Frees what config_load allocated (wiping passwords); the struct itself is the caller's. */
void config_release(struct config *c);

/*
 * Checks and normalizes a cgroup path given by a person: absolute, no "." or ".."
 * components, no empty components; a trailing '/' is dropped; "/" stays "/".
 * Writes into ret (len bytes). 0 or -EINVAL.
 */
int config_cgroup_path(const char *in, char *ret, size_t len);

#endif
