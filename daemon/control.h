/*
 * The control socket: the only way in for the `pgtether` CLI. A unix stream socket,
 * mode 0600, whose peers must be root (SO_PEERCRED); with approvers_group, mode 0660
 * and group approvers_group, whose members (SO_PEERCRED's gid or SO_PEERGROUPS, the
 * kernel's credentials of the peer) may list, approve and deny held statements and
 * nothing else. One request per connection: a
 * JSON object on one line ({"cmd":"attach","cgroup":"/ci"}), answered by one JSON
 * object on one line ({"ok":true,...} or {"ok":false,"error":"..."}).
 */
#ifndef PGTETHER_CONTROL_H
#define PGTETHER_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CONTROL_ERR_LEN 512
#define CONTROL_MAX_REQUEST 65536
#define CONTROL_MAX_REPLY (64u << 20) /* held statements are shown whole (SESSION_MAX_SHOWN each) */

/* Who is on the other end of a control connection. */
struct control_peer {
	pid_t pid;
	uid_t uid;
	uint32_t loginuid;           /* /proc/PID/loginuid (who logged in, through sudo);
					* CONTROL_NO_LOGINUID when unset or unknown */
	bool root;                   /* uid 0: every command */
	bool approver;               /* in approvers_group: approvals, approve, deny */
};
#define CONTROL_NO_LOGINUID UINT32_MAX

struct control_handlers {
	void *arg;
	bool have_approvers;         /* approvers_group is set */
	gid_t approvers_gid;
	/* 0, 1 when nothing had to change, or -errno with err filled */
	int (*attach)(void *arg, const char *cgroup, char *err);
	int (*detach)(void *arg, const char *cgroup, char *err);
	/* a new reference */
	json_t *(*status)(void *arg);
	/* 0, or -errno with err filled (the running configuration stays) */
	int (*reload)(void *arg, char *err);
	/* the statements held for approval (a new reference) */
	json_t *(*approvals)(void *arg);
	/* approve or deny request id, as peer; 0 or -errno with err filled */
	int (*decide)(void *arg, uint64_t id, bool approve, const char *reason, const struct control_peer *peer,
		      char *err);
};

/*
 * Binds path (creating its directory, mode 0755, if missing). A stale socket file is
 * replaced; a live one (another daemon answers) is an error. With approvers (gid
 * not (gid_t)-1) the socket is root:gid 0660, and its directory must be root's,
 * writable by nobody else (or sticky) and searchable by the group. Returns the
 * listening fd (non-blocking, close-on-exec) or -errno with err filled.
 */
int control_listen(const char *path, gid_t approvers, char *err);

/* The gid of approvers_group (a name, or a number): 0 or -errno with err filled. */
int control_group_gid(const char *group, gid_t *ret, char *err);

/* Serves every pending connection on lfd. Each is handled to the end, with 2 s
 * socket timeouts so a stuck client cannot hold the daemon. */
void control_serve(int lfd, const struct control_handlers *h);

/* Client side: sends req, returns the reply object in *ret (new reference). 0 or
 * -errno with err filled ("cannot connect to /run/pgtether/control.sock: ..."). */
int control_call(const char *path, json_t *req, json_t **ret, char *err);

#endif
