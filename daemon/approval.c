/*
 * Statements held for approval, in a worker (session_int.h): the request number and
 * the listing come from the parent, which owns approvals (monitor.c: `pgtether
 * approvals`, `approve`, `deny`, who may decide); the decision, a timeout or the
 * client's cancel lets the held statement run or fail here. Moved out of session.c
 * (issue 13).
 */
#include "session_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "escape.h"
#include "privsep.h"
#include "sessrec.h"
#include "worker.h"

/* A request number for a held statement, from the parent (unique across workers). */
uint64_t session_request_id(struct session_env *env, struct session *s)
{
	uint64_t id = 0;
	size_t n;

	(void)env;
	if (worker_call(PRIV_HELD, s->id, NULL, 0, &id, sizeof(id), &n, NULL) < 0 || n != sizeof(id))
		return 0;
	return id;
}

/* What the approver is shown: every string a workload chose, valid UTF-8 for JSON
 * (escaped when not); the CLI escapes them again for the terminal. */
void session_held_announce(struct session_env *env, struct session *s)
{
	struct priv_held h = { s->held_timeout, 0 };
	bool escaped = false;
	char *text;
	uint8_t *b;
	json_t *a;

	(void)env;
	a = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:I}", "pid", (json_int_t)s->origin.tgid,
		      "uid", (json_int_t)s->origin.uid, "cgroup", escape_json_str(s->facts.cgroup),
		      "exe", escape_json_str(s->facts.exe), "rule", escape_json_str(s->rule), "why", escape_json_str(s->held_why),
		      "sql", escape_json(s->held_sql ? s->held_sql : "", s->held_len, &escaped),
		      "timeout_s", (json_int_t)s->held_timeout);
	if (!a)
		return;
	if (escaped)
		json_object_set_new(a, "sql_escaped", json_true());
	if (s->held_extra)
		json_object_update(a, s->held_extra);
	if (s->token_sub[0])
		json_object_set_new(a, "sub", escape_json_str(s->token_sub));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (!text)
		return;
	h.json_len = (uint32_t)strlen(text);
	b = malloc(sizeof(h) + h.json_len);
	if (b) {
		memcpy(b, &h, sizeof(h));
		memcpy(b + sizeof(h), text, h.json_len);
		if (worker_notify(PRIV_HELD_INFO, s->id, b, sizeof(h) + h.json_len, -1) < 0)
			log_warn("approval.request", "id=%llu: request %llu is too large to list for approvers",
				 (unsigned long long)s->id, (unsigned long long)s->held_id);
		free(b);
	}
	free(text);
}

void session_decided(struct session_env *env, uint64_t id, const struct priv_decide *d)
{
	struct session *s = session_find(env, id);
	struct session_approver who = { d->who_uid, d->who_loginuid, d->who_root };
	char err[160];

	if (!s || !PRIV_STR_OK(d->by) || !PRIV_STR_OK(d->reason))
		return;
	session_decide(env, d->request, d->approve, d->reason, d->by[0] ? d->by : "an approver", d->have_who ? &who : NULL,
		       err, sizeof(err));
}

int session_decide(struct session_env *env, uint64_t id, bool approve, const char *reason, const char *by,
		   const struct session_approver *who, char *err, size_t errlen)
{
	struct session *s;
	struct logline l;
	json_t *ev;

	for (s = env->head; s; s = s->next)
		if (s->held_id == id && !s->held_decision && s->state == SESSION_RELAYING)
			break;
	if (!s) {
		snprintf(err, errlen, "no statement waits as request %llu", (unsigned long long)id);
		return -ENOENT;
	}
	/* who may decide was checked by the parent (monitor_decide), with the uid it
	 * read itself; who is here for the log and the recording */
	s->held_decision = approve ? 1 : -1;
	if (!by)
		snprintf(s->held_msg, sizeof(s->held_msg), "pgtether: request %llu timed out after %u s without approval (%s)",
			 (unsigned long long)id, s->held_timeout, s->held_why);
	else if (!approve)
		snprintf(s->held_msg, sizeof(s->held_msg), "pgtether: request %llu was denied by %s%s%s", (unsigned long long)id,
			 by, reason && *reason ? ": " : "", reason && *reason ? reason : "");
	log_begin(&l, LOG_LEVEL_INFO, "approval.decision");
	log_u64(&l, "request", id);
	log_u64(&l, "id", s->id);
	log_str(&l, "cgroup", s->facts.cgroup);
	log_str(&l, "rule", s->rule);
	log_str(&l, "decision", !by ? "timeout" : approve ? "approved" : "denied");
	log_str(&l, "by", by ? by : "timeout");
	if (who) {
		log_u64(&l, "approver_uid", who->uid);
		if (who->loginuid != UINT32_MAX)
			log_u64(&l, "approver_loginuid", who->loginuid);
	}
	if (reason && *reason)
		log_str(&l, "reason", reason);
	log_end(&l, LOG_LEVEL_INFO);
	ev = json_pack("{s:I, s:s, s:s, s:o}", "request", (json_int_t)id, "decision",
		       !by ? "timeout" : approve ? "approved" : "denied", "by", by ? by : "timeout",
		       "reason", escape_json_str(reason ? reason : ""));
	if (ev && who) {
		json_object_set_new(ev, "approver_uid", json_integer(who->uid));
		json_object_set_new(ev, "approver_loginuid",
				    who->loginuid != UINT32_MAX ? json_integer(who->loginuid) : json_null());
	}
	sessrec_event(env, s, "approval", ev, true);
	worker_notify(PRIV_HELD_DONE, s->id, NULL, 0, -1); /* no longer listed for approvers */
	/* go on from the held statement, as if its bytes had just arrived */
	session_relay_event(env, s, &s->client, EPOLLIN);
	return 0;
}
