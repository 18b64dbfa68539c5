/*
 * The recording adapter: what of one session goes into its recording (record.h writes
 * the file) and when, under recording_fail_mode. Moved out of session.c (issue 13);
 * the session calls these at the points its story reaches.
 */
#include "sessrec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "b64url.h"
#include "escape.h"
#include "log.h"
#include <unistd.h>

/* Opens the session's recording once its identity is decided. 0, or -1 after refusing
 * the session (recording_fail_mode closed). */
int sessrec_open(struct session_env *env, struct session *s, int fd, const char *id, const char *path, char *why,
		 size_t cap)
{
	char buf[ADDR_STRLEN], comm[PGT_COMM_LEN + 1], err[RECORD_ERR_LEN];
	json_t *h;
	int r;

	memcpy(comm, s->origin.comm, PGT_COMM_LEN);
	comm[PGT_COMM_LEN] = '\0';
	/* what the workload chose (comm, exe, cgroup, database, user, application_name)
	 * escaped when not UTF-8 (escape.h): the identity is never lost from the header */
	h = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:s, s:o, s:I, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o}",
		      "session", (json_int_t)s->id, "pid", (json_int_t)s->origin.tgid, "uid", (json_int_t)s->origin.uid,
		      "gid", (json_int_t)s->origin.gid, "comm", escape_json_str(comm), "exe", escape_json_str(s->facts.exe),
		      "exe_sha256", s->facts.exe_sha256, "cgroup", escape_json_str(s->facts.cgroup),
		      "cgroup_id", (json_int_t)s->origin.cgroup_id, "peer", addr_format(&s->peer, buf),
		      "upstream", s->upstream_name, "role", s->role, "database", escape_json_str(s->database),
		      "rule", s->rule, "token", s->token_source ? s->token_source : "none",
		      "client_user", escape_json_str(s->client_user), "application_name", escape_json_str(s->client_app));
	if (h) {
		json_t *set = json_object();

		json_object_set_new(h, "dst", json_string(addr_format(&s->dst, buf)));
		/* the startup settings passed on: they decide what the statements reach */
		for (size_t at = 0; set && at < s->fwd_len;) {
			const char *k = s->fwd_params + at, *v = k + strlen(k) + 1;

			json_object_set_new(set, k, escape_json_str(v));
			at = (size_t)(v - s->fwd_params) + strlen(v) + 1;
		}
		json_object_set_new(h, "settings", set);
		if (s->claims)
			json_object_set(h, "claims", s->claims); /* verified claims; never the token */
	}
	s->rec = calloc(1, sizeof(*s->rec));
	if (s->rec) {
		/* the parent created the file (recordings are root's); this worker writes it */
		s->rec->fd = fd;
		s->rec->fsync_each = env->cfg->recording_fsync;
		snprintf(s->rec->id, sizeof(s->rec->id), "%s", id);
		snprintf(s->rec->path, sizeof(s->rec->path), "%s", path);
		r = record_begin(s->rec, h, err);
	} else {
		close(fd);
		json_decref(h);
		snprintf(err, sizeof(err), "out of memory");
		r = -ENOMEM;
	}
	if (r == 0)
		return 0;
	free(s->rec);
	s->rec = NULL;
	snprintf(why, cap, "%s", err);
	log_error("record", "id=%llu: %s%s", (unsigned long long)s->id, err,
		  env->cfg->recording_fail_open ? "; the session goes on unrecorded (recording_fail_mode open)" : "");
	return env->cfg->recording_fail_open ? 0 : -1;
}

/* Records one event. 0, or -errno when it cannot be written and that must stop what
 * is being recorded (recording_fail_mode closed). fields is taken. */
int sessrec_event(struct session_env *env, struct session *s, const char *type, json_t *fields, bool flush)
{
	int r;

	if (!s->rec) {
		json_decref(fields);
		return 0;
	}
	r = record_add(s->rec, type, fields);
	if (r == 0 && flush)
		r = record_flush(s->rec);
	if (r == 0)
		return 0;
	log_error("record", "id=%llu: cannot write %s: %s%s", (unsigned long long)s->id, s->rec->path, strerror(-r),
		  env->cfg->recording_fail_open ? "; the session goes on unrecorded" : "");
	if (env->cfg->recording_fail_open) {
		record_abandon(s->rec);
		free(s->rec);
		s->rec = NULL;
		return 0;
	}
	return r;
}

void sessrec_seal(struct session *s)
{
	if (!s->rec)
		return;
	if (s->rec->fd >= 0)
		/* a refusal keeps the words the client got (the server's, for a login it
		 * refused) beside the table's short reason */
		record_seal(s->rec, json_pack("{s:I, s:I, s:I, s:s, s:s*}", "bytes_in", (json_int_t)s->bytes_c2u,
					      "bytes_out", (json_int_t)s->bytes_u2c, "duration_ms", (json_int_t)session_elapsed_ms(s),
					      "reason", s->close_reason ? s->close_reason : s->refuse_msg[0] ? s->refuse_msg : "closed",
					      "msg", s->refuse_msg[0] && s->close_reason ? s->refuse_msg : NULL));
	free(s->rec);
	s->rec = NULL;
}

/* Records a Query or Parse and its verdict, flushed at once. 0 or -errno. */
int sessrec_statement(struct session_env *env, struct session *s, uint8_t type, const char *sql, size_t len,
		      enum policy_verdict v, const char *sqlstate, const char *msg)
{
	bool escaped = false;
	json_t *ev;

	if (!s->rec)
		return 0;
	ev = json_pack("{s:s, s:s}", "message", type == 'Q' ? "query" : type == 'B' ? "bind" : "parse", "verdict",
		       v == POLICY_ALLOW ? "allow" : v == POLICY_DENY ? "deny" : "held");
	if (!ev)
		return -ENOMEM;
	/* whole (the caller bounds it by max_statement_bytes); bytes that are not UTF-8
	 * escaped, and said so (escape.h) */
	json_object_set_new(ev, "sql", escape_json(sql, len, &escaped));
	if (escaped)
		json_object_set_new(ev, "sql_escaped", json_true());
	json_object_set_new(ev, "rule", json_string(s->rule));
	if (s->stmt_classes) {
		char names[256];

		sqlclass_format(s->stmt_classes, names, sizeof(names));
		json_object_set_new(ev, "classes", json_string(names));
	}
	if (v == POLICY_DENY) {
		json_object_set_new(ev, "sqlstate", json_string(sqlstate));
		json_object_set_new(ev, "msg", escape_json_str(msg));
	} else if (v == POLICY_APPROVE) {
		json_object_set_new(ev, "request", json_integer((json_int_t)s->held_id));
		json_object_set_new(ev, "why", escape_json_str(msg));
	}
	clock_gettime(CLOCK_MONOTONIC, &s->stmt_t0);
	if (v == POLICY_ALLOW && type != 'B' && env->cfg && s->rule[0]) {
		const struct policy_rule *r = session_rule(env, s);

		s->rows_to_record = r && r->record_results ? 100 : 0;
		s->row_bytes_left = 65536;
	}
	return sessrec_event(env, s, "statement", ev, true);
}

/* Records what the server answered a statement with: its tag, error or notice. */
void sessrec_server_message(struct session_env *env, struct session *s, const uint8_t *m, size_t mlen)
{
	const char *p = (const char *)m + PGWIRE_HEADER, *end = (const char *)m + mlen;
	json_t *ev;

	if (!s->rec || mlen <= PGWIRE_HEADER || end[-1] != '\0')
		return;
	struct timespec now;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - s->stmt_t0.tv_sec) * 1e3 + (double)(now.tv_nsec - s->stmt_t0.tv_nsec) / 1e6;
	if (m[0] == 'C') {
		const char *last = strrchr(p, ' ');

		ev = json_pack("{s:s, s:f}", "tag", p, "ms", ms);
		/* "SELECT 3", "INSERT 0 3", "UPDATE 3", "COPY 3": the last number is the rows */
		if (ev && last && last[1] >= '0' && last[1] <= '9')
			json_object_set_new(ev, "rows", json_integer(strtoll(last + 1, NULL, 10)));
		sessrec_event(env, s, "result", ev, false);
		return;
	}
	ev = json_pack("{s:f}", "ms", ms);
	/* all the server said in words: what a masked session's client does not see */
	while (ev && p < end && *p) {
		static const struct { char code; const char *key; } fields[] = {
			{ 'C', "sqlstate" }, { 'M', "msg" }, { 'D', "detail" }, { 'H', "hint" }, { 'W', "context" },
		};

		/* they may quote the statement */
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (*p == fields[i].code)
				json_object_set_new(ev, fields[i].key, escape_json_str(p + 1));
		p += strlen(p) + 1;
	}
	sessrec_event(env, s, m[0] == 'N' ? "notice" : "error", ev, false);
}

/* A value for the recording: text as a string when it is UTF-8 without a NUL (a
 * JSON \u0000 is not a record to record_verify, nor text to most readers), else "\x"
 * and hex; cut at `max` bytes. */
static json_t *sessrec_value(const uint8_t *v, int32_t len, int format, size_t max)
{
	char hex[2 * 256 + 3];
	size_t n = len > 0 ? (size_t)len : 0;
	json_t *j;

	if (len < 0)
		return json_null();
	if (n > max)
		n = max;
	if (format == 0 && !memchr(v, 0, n) && (j = json_stringn((const char *)v, n)))
		return j;
	if (n > 256)
		n = 256;
	hex[0] = '\\';
	hex[1] = 'x';
	hex_encode(v, n, hex + 2);
	return json_string(hex);
}

/* Records the parameters of a whole Bind body (masked when its statement names a
 * masked table, or is not known). */
void sessrec_bind(struct session_env *env, struct session *s, const struct policy_rule *masking, const uint8_t *body,
		  size_t blen)
{
	size_t portal = strnlen((const char *)body, blen), stmt_len;
	const char *stmt;
	bool masked = masking && masking->n_masks;
	json_t *params, *escaped, *ev;

	if (portal >= blen)
		return;
	stmt = (const char *)body + portal + 1;
	if (masked && memchr(stmt, 0, blen - portal - 1) && session_prepared_clean(s, stmt))
		masked = false; /* known, and it names no masked table */
	if (!(params = session_bind_params(body, blen, masked, &escaped, &stmt, &stmt_len)))
		return;
	ev = json_pack("{s:o, s:o, s:b}", "statement", escape_json(stmt, stmt_len, NULL), "params", params, "masked", masked);
	if (ev && json_array_size(escaped))
		json_object_set(ev, "escaped", escaped);
	json_decref(escaped);
	sessrec_event(env, s, "bind", ev, false);
}

/* Records a result row as the client gets it (after masking), within the budget
 * of the statement. */
void sessrec_row(struct session_env *env, struct session *s, const uint8_t *m, size_t mlen)
{
	const uint8_t *p = m + PGWIRE_HEADER + 2, *end = m + mlen;
	json_t *vals = json_array();

	if (!vals)
		return;
	for (size_t i = 0; i < s->rows.n_cols && p + 4 <= end; i++) {
		int32_t len = (int32_t)pgwire_get32(p);

		p += 4;
		json_array_append_new(vals, sessrec_value(p, len, s->rows.cols[i].format, 1024));
		if (len > 0)
			p += len;
	}
	s->rows_to_record--;
	s->row_bytes_left = mlen < s->row_bytes_left ? s->row_bytes_left - mlen : 0;
	if (!s->row_bytes_left)
		s->rows_to_record = 0;
	sessrec_event(env, s, "row", json_pack("{s:o}", "values", vals), false);
}
