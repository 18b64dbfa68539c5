/*
 * Held statements as the parent keeps them (monitor.h): what approvers are shown of
 * each (its worker's listing, bounded by what parsing it takes, with who asked from
 * the parent's own record) and a person's decision, sent to the session's worker.
 */

#include "monitor_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "log.h"
#include "session.h"

/* c's held statement is no longer listed for approvers. */
void held_unlist(struct mon_conn *c)
{
	json_decref(c->held);
	c->held = NULL;
	if (c->w)
		c->w->held_bytes -= c->held_len;
	c->held_len = 0;
}

/* What approvers are shown of c's held statement. A worker sends one per request, so a
 * second is -EPROTO whatever came of the first. Each worker's listings together hold
 * at most its share of one `pgtether approvals` answer (one taken over cannot crowd
 * the others' out, nor fill the parent's memory), and it may have at most
 * MON_HELD_BYTES_MAX parsed a minute (nor keep the parent's loop parsing). Past
 * either, the request is not listed (it times out). */
int held_info(struct monitor *m, struct mon_conn *c, const uint8_t *body, size_t len)
{
	struct mon_worker *w = c->w;
	size_t share = MON_HELD_BYTES_MAX / (m->n_workers ? m->n_workers : 1), charge;
	time_t now = time(NULL);
	struct priv_held h;
	json_error_t e;
	long values;
	json_t *j;

	if (c->held_info_seen)
		return -EPROTO;
	c->held_info_seen = true;
	if (len < sizeof(h))
		return 0;
	memcpy(&h, body, sizeof(h));
	if (now - w->held_window >= 60 || now < w->held_window) {
		w->held_window = now;
		w->held_window_bytes = 0;
	}
	if (h.json_len != len - sizeof(h) ||
	    (values = priv_json_count((const char *)body + sizeof(h), h.json_len, PRIV_HELD_MAX_DEPTH, PRIV_HELD_MAX_VALUES)) < 0) {
		log_warn("approval.request", "id=%llu: worker %u sent what approvers are shown in a shape it never makes; not listed",
			 (unsigned long long)c->id, c->w->idx);
		return 0;
	}
	/* charged for what it will take parsed, not for its text: a listing of empty
	 * objects is some 80 times its text in jansson's values */
	charge = (size_t)h.json_len + (size_t)values * PRIV_JSON_VALUE_COST + MON_HELD_OVERHEAD;
	if (w->held_bytes + charge > share || w->held_window_bytes + charge > MON_HELD_BYTES_MAX) {
		log_warn("approval.request", "id=%llu: worker %u's held statements already take %zu bytes of listings (%zu parsed this minute); request %llu is not listed",
			 (unsigned long long)c->id, w->idx, w->held_bytes, w->held_window_bytes, (unsigned long long)c->held_id);
		return 0;
	}
	w->held_window_bytes += charge;
	j = json_loadb((const char *)body + sizeof(h), h.json_len, JSON_REJECT_DUPLICATES, &e);
	if (!json_is_object(j)) {
		json_decref(j);
		return 0;
	}
	/* who asked is the parent's record, not the worker's word: the token's subject
	 * it verified too, and the rule it last knows of */
	json_object_set_new(j, "pid", json_integer((json_int_t)c->origin.tgid));
	json_object_set_new(j, "uid", json_integer((json_int_t)c->origin.uid));
	json_object_set_new(j, "rule", escape_json_str(c->rule));
	if (c->token_sub[0])
		json_object_set_new(j, "sub", escape_json_str(c->token_sub));
	else
		json_object_del(j, "sub");
	if (c->facts_read) {
		json_object_set_new(j, "cgroup", escape_json_str(c->facts.cgroup));
		json_object_set_new(j, "exe", escape_json_str(c->facts.exe));
	}
	c->held = j;
	c->held_len = charge;
	w->held_bytes += charge;
	return 0;
}

json_t *monitor_approvals(struct monitor *m)
{
	json_t *list = json_array();
	time_t now = time(NULL);

	for (struct mon_conn *c = m->head; c && list; c = c->next) {
		json_t *a;

		if (!c->held_id || !c->held)
			continue;
		a = json_deep_copy(c->held);
		if (!a)
			continue;
		json_object_set_new(a, "request", json_integer((json_int_t)c->held_id));
		json_object_set_new(a, "session", json_integer((json_int_t)c->id));
		json_object_set_new(a, "waiting_s", json_integer((json_int_t)(now - c->held_since)));
		json_array_append_new(list, a);
	}
	return list;
}

int monitor_decide(struct monitor *m, uint64_t id, bool approve, const char *reason, const char *by,
		   const struct session_approver *who, char *err, size_t errlen)
{
	struct priv_decide d;
	struct mon_conn *c;

	for (c = m->head; c; c = c->next)
		if (c->held_id == id && c->st == MC_RELAYING)
			break;
	if (!c) {
		snprintf(err, errlen, "no statement waits as request %llu", (unsigned long long)id);
		return -ENOENT;
	}
	/* approvers are people other than the workload; denying is always allowed */
	if (who && approve && !who->root && (who->uid == c->origin.uid || (who->loginuid && who->loginuid == c->origin.uid))) {
		snprintf(err, errlen, "request %llu was made by uid %u, which cannot approve its own request%s",
			 (unsigned long long)id, c->origin.uid, who->uid == c->origin.uid ? "" : " (you logged in as that uid)");
		return -EPERM;
	}
	memset(&d, 0, sizeof(d));
	d.request = id;
	d.approve = approve;
	if (who) {
		d.have_who = true;
		d.who_root = who->root;
		d.who_uid = who->uid;
		d.who_loginuid = who->loginuid;
	}
	snprintf(d.by, sizeof(d.by), "%s", by ? by : "");
	snprintf(d.reason, sizeof(d.reason), "%s", reason ? reason : "");
	c->held_id = 0; /* decided: no longer listed, nor decided twice */
	held_unlist(c);
	if (worker_send(c->w, PRIV_DECIDE, c->id, &d, sizeof(d), -1) < 0) {
		snprintf(err, errlen, "the worker serving request %llu cannot be reached", (unsigned long long)id);
		return -EIO;
	}
	return 0;
}
