/*
 * The control socket: the only way in for the `pgtether` CLI. A unix stream socket,
 * mode 0600, whose peers must be root (SO_PEERCRED). One request per connection: a
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
#define CONTROL_MAX_REPLY (16u << 20)

struct control_handlers {
	void *arg;
	/* 0, 1 when nothing had to change, or -errno with err filled */
	int (*attach)(void *arg, const char *cgroup, char *err);
	int (*detach)(void *arg, const char *cgroup, char *err);
	/* a new reference */
	json_t *(*status)(void *arg);
	/* 0, or -errno with err filled (the running configuration stays) */
	int (*reload)(void *arg, char *err);
	/* the statements held for approval (a new reference) */
	json_t *(*approvals)(void *arg);
	/* approve or deny request id, as the peer (pid, uid) of the control socket;
	 * 0 or -errno with err filled */
	int (*decide)(void *arg, uint64_t id, bool approve, const char *reason, pid_t pid, uid_t uid, char *err);
};

/*
 * Binds path (creating its directory, mode 0755, if missing). A stale socket file is
 * replaced; a live one (another daemon answers) is an error. Returns the listening
 * fd (non-blocking, close-on-exec) or -errno with err filled.
 */
int control_listen(const char *path, char *err);

/* Serves every pending connection on lfd. Each is handled to the end, with 2 s
 * socket timeouts so a stuck client cannot hold the daemon. */
void control_serve(int lfd, const struct control_handlers *h);

/* Client side: sends req, returns the reply object in *ret (new reference). 0 or
 * -errno with err filled ("cannot connect to /run/pgtether/control.sock: ..."). */
int control_call(const char *path, json_t *req, json_t **ret, char *err);

#endif
