/*
 * Client → server in a relaying session: follows the client's messages in c2u,
 * decides each Query, Parse and Bind (gate.h) and does what the verdict says for the
 * session: passes it, holds it for approval, or swaps it for a statement that fails
 * on the server (its error becomes the denial on the way back, server_side.c); asks
 * the server first what unqualified names resolve to, or what masks resolve to, when
 * that is not known; and keeps the books the server side reads (what is owed to the
 * client in order, which answers are to Describes pgtether added, which batches'
 * texts are withheld). Private to the session's modules (session_int.h).
 */
#include "client_side.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64url.h"
#include "cancel.h"
#include "escape.h"
#include "gate.h"
#include "log.h"
#include "privsep.h"
#include "worker.h"
#include "sessrec.h"
#include "sqlguard.h"

/*
 * The order of what the client is owed: 'Q' or 'S' when a forwarded Query or Sync
 * awaits the server's ReadyForQuery, 'F' for a refused message whose ErrorResponse goes out
 * after the answers to everything sent before it.
 */
static int pending_push(struct session *s, uint8_t what)
{
	if (s->pending_count == SESSION_MAX_PENDING)
		return -ENOBUFS;
	s->pending[(s->pending_head + s->pending_count++) % SESSION_MAX_PENDING] = what;
	return 0;
}

/* Whether a forwarded Query or Sync still awaits the server's ReadyForQuery. */
static bool awaits_server(const struct session *s)
{
	for (size_t i = 0; i < s->pending_count; i++)
		if (s->pending[(s->pending_head + i) % SESSION_MAX_PENDING] != 'F')
			return true;
	return false;
}

/* Whether the server can be asked now what the session's names resolve to: nothing
 * is outstanding, so its answer is the state the next statement runs in. */
bool client_side_can_ask(const struct session *s)
{
	return !s->c_unsynced && s->pending_count == 0 && s->tx_status != 'E' && !s->held_id &&
	       !s->want_status && pgwire_scan_at_boundary(&s->sscan);
}

/*
 * The scan of sql[0..len) (sql[len] is NUL), kept for the same text: a statement
 * that needs the server's answer is scanned once, not again for the question and
 * for its check. NULL when it cannot be scanned (*ret_rc says why).
 */
static const struct searchpath_scan *path_scan(struct session *s, const char *sql, size_t len, int *ret_rc)
{
	if (!s->path_sql || s->path_sql_len != len || memcmp(s->path_sql, sql, len)) {
		free(s->path_sql);
		searchpath_scan_release(&s->path_sc);
		s->path_sql = NULL;
		s->path_sc_rc = searchpath_scan(sql, &s->path_sc);
		if (s->path_sc_rc == 0 && !(s->path_sql = malloc(len + 1)))
			s->path_sc_rc = -ENOMEM;
		if (s->path_sql) {
			memcpy(s->path_sql, sql, len + 1);
			s->path_sql_len = len;
		}
	}
	*ret_rc = s->path_sc_rc;
	return s->path_sc_rc == 0 ? &s->path_sc : NULL;
}

/* gate_scan_fn for a session: its kept scan (path_scan). */
static const struct searchpath_scan *gate_session_scan(void *arg, const char *sql, size_t len, int *ret_rc)
{
	return path_scan(arg, sql, len, ret_rc);
}

/*
 * The verdict on the SQL text of one Query or Parse (sql[len] is its NUL), decided
 * by gate_check on the session's facts; here what follows from it for the session:
 * the names it prepares, the texts an approver is shown for its EXECUTEs, the
 * approval's timeout. A denial leaves its SQLSTATE and message in sqlstate and msg.
 */
static enum policy_verdict check_statement(struct session_env *env, struct session *s, const char *sql, size_t len,
					   const char *parse_name, char *sqlstate, char *msg, size_t cap, bool *touches_masked,
					   json_t **ret_extra)
{
	const struct policy_rule *r = session_rule(env, s);
	struct gate_facts f = {
		.rule = r,
		.rule_name = s->rule,
		.dangerous = policy_dangerous(&env->cfg->policy),
		.cache = env->sqlcache,
		.max_statement_bytes = env->cfg->max_statement_bytes,
		.max_shown = SESSION_MAX_SHOWN,
		.read_only = s->read_only,
		.masks = &s->masks,
		.stmts = &s->stmts,
		.path = s->path_fresh ? &s->path : NULL,
		.path_parse = s->path_parse,
		.tx_status = s->tx_status == 'E' ? 'E' : 'T',
		.scan = gate_session_scan,
		.scan_arg = s,
	};
	struct gate_result g;
	const struct sqlclass_result *c;
	enum policy_verdict v = gate_check(&f, sql, len, &g);

	c = g.c;
	s->stmt_classes = g.classes;
	if (g.sqlstate[0])
		strcpy(sqlstate, g.sqlstate);
	if (g.decided)
		*touches_masked = g.touches_masked;
	if (g.may_prepare) {
		/* what may now be prepared under a name (-ENOSPC: it stays unknown) */
		bool keep = r->statements.approve != 0;

		if (parse_name)
			prepared_note(&s->stmts, parse_name, c, sql, len, keep);
		for (size_t i = 0; i < c->n_prepares; i++)
			prepared_note(&s->stmts, c->prepares[i], c, sql, len, keep);
	}
	if (v == POLICY_APPROVE && c->n_executes && (*ret_extra = json_pack("{s:[]}", "prepared"))) {
		/* the approver sees what each EXECUTE runs too */
		for (size_t i = 0; i < c->n_executes; i++) {
			struct prepared_view pv;
			bool escaped = false;
			json_t *one;

			char *text = NULL;
			size_t text_len = 0;

			if (prepared_resolve(&s->stmts, c->executes[i], false, &pv) < 0 ||
			    !(text = prepared_view_text(&pv, &text_len))) {
				snprintf(msg, cap, "pgtether: %s, but what EXECUTE %s runs was not kept to be shown to an approver, so it is denied",
					 g.why, c->executes[i]);
				json_decref(*ret_extra);
				*ret_extra = NULL;
				gate_release(&g);
				return POLICY_DENY;
			}
			one = json_pack("{s:o, s:o, s:b}", "name", escape_json_str(c->executes[i]), "sql",
					escape_json(text, text_len, &escaped), "several", pv.n_texts > 1);
			free(text);
			if (one && escaped)
				json_object_set_new(one, "sql_escaped", json_true());
			json_array_append_new(json_object_get(*ret_extra, "prepared"), one);
		}
	}
	if (v == POLICY_APPROVE)
		s->held_timeout = r->statements.approval_timeout;
	gate_message(&g, msg, cap);
	gate_release(&g);
	return v;
}

/*
 * Replaces the Query or Parse at data[start..start+mlen) of c2u with one whose SQL
 * fails to parse on the server, carrying the denial's number; the server then answers
 * as for any failed statement (ErrorResponse, discards to Sync, keeps its transaction
 * state) and server_side_scan swaps that error for the denial. 0 or -ENOBUFS.
 */
static int substitute_sentinel(struct session_env *env, struct session *s, size_t start, size_t mlen,
			       const char *sqlstate, const char *msg)
{
	struct session_buf *b = &s->c2u;
	uint8_t m[256];
	char sql[96];
	size_t n = 0, name_len = 0;
	uint32_t slot;

	/* After the first error of an extended-query batch the server discards all up
	 * to Sync: a later denied Parse of the batch is never answered, and needs no
	 * room of its own (a pipeline of a hundred denied inserts is one error). */
	bool bind = b->data[start] == 'B';
	bool answered = !((b->data[start] == 'P' || bind) && s->batch_denied);

	if (answered && s->sentinels_out >= SESSION_MAX_DENIALS)
		return -ENOBUFS;
	slot = s->denial_seq % SESSION_MAX_DENIALS;
	if (answered) {
		snprintf(s->denials[slot].sqlstate, sizeof(s->denials[slot].sqlstate), "%s", sqlstate);
		snprintf(s->denials[slot].msg, sizeof(s->denials[slot].msg), "%s", msg);
	}
	snprintf(sql, sizeof(sql), "%s%u", env->sentinel_tag, answered ? s->denial_seq++ : s->denial_seq - 1);
	m[n++] = bind ? 'P' : b->data[start];
	n += 4;
	if (bind) {
		/* a denied Bind becomes a Parse that fails under a name nobody uses: the
		 * server answers it as a failed Bind and creates nothing, not even the
		 * unnamed statement is touched */
		name_len = strlen(sql);
		memcpy(m + n, sql, name_len);
		n += name_len;
		m[n++] = '\0';
	} else if (m[0] == 'P') {
		/* keep the statement name: the server must not create it either */
		name_len = strnlen((char *)b->data + start + 5, mlen - 5);
		if (name_len >= 128)
			name_len = 0;
		memcpy(m + n, b->data + start + 5, name_len);
		n += name_len;
		m[n++] = '\0';
	}
	memcpy(m + n, sql, strlen(sql) + 1);
	n += strlen(sql) + 1;
	if (m[0] == 'P') {
		m[n++] = 0; /* no parameter types */
		m[n++] = 0;
	}
	pgwire_put32(m + 1, (uint32_t)(n - 1));
	/* n is below mlen for any Query/Parse long enough to need a check, but not always */
	if (n > mlen && n - mlen > sbuf_room(b))
		return -ENOBUFS;
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	memcpy(b->data + start, m, n);
	b->len = b->len - mlen + n;
	if (answered)
		s->sentinels_out++;
	if (m[0] == 'P')
		s->batch_denied = true;
	return (int)n;
}

/* Holds the statement now at c_scan for approval and tells the client how to get it. */
void client_side_hold(struct session_env *env, struct session *s, const char *sql, size_t len, const char *why,
		      json_t *extra)
{
	char text[500];
	struct logline l;

	s->held_id = session_request_id(env, s); /* the parent's: unique across workers */
	s->held_since = time(NULL);
	s->held_decision = 0;
	snprintf(s->held_why, sizeof(s->held_why), "%s", why);
	/* whole: the approver sees everything that runs (check_statement bounds it) */
	free(s->held_sql);
	s->held_sql = malloc(len + 1);
	s->held_len = s->held_sql ? len : 0;
	if (s->held_sql) {
		memcpy(s->held_sql, sql, len);
		s->held_sql[len] = '\0';
	}
	json_decref(s->held_extra);
	s->held_extra = extra;
	snprintf(text, sizeof(text), "pgtether: statement held for approval as request %llu (%s): pgtether approve %llu",
		 (unsigned long long)s->held_id, why, (unsigned long long)s->held_id);
	s->notice_len = pgwire_error_response(s->notice, sizeof(s->notice), "NOTICE", "01000", text, NULL);
	if (s->notice_len)
		s->notice[0] = 'N';
	log_begin(&l, LOG_LEVEL_WARN, "approval.request");
	log_u64(&l, "request", s->held_id);
	log_u64(&l, "id", s->id);
	log_u64(&l, "pid", s->origin.tgid);
	log_u64(&l, "uid", s->origin.uid);
	log_str(&l, "cgroup", s->facts.cgroup);
	log_str(&l, "rule", s->rule);
	if (s->token_sub[0])
		log_str(&l, "sub", s->token_sub);
	log_str(&l, "why", why);
	log_u64(&l, "timeout_s", s->held_timeout);
	log_end(&l, LOG_LEVEL_WARN);
	session_held_announce(env, s); /* the parent lists it for approvers */
}

/* A hold client_side_hold announced that does not stand (its statement cannot be
 * recorded, so it is denied): the parent lists it no more, nor lets it be decided. */
static void client_side_unhold(struct session *s)
{
	if (s->held_id)
		worker_notify(PRIV_HELD_DONE, s->id, NULL, 0, -1);
	s->held_id = 0;
}

/* The decision on the held statement, now that there is one: it runs (allow) or
 * fails with the approver's reason; nothing is held any more. */
static enum policy_verdict held_outcome(struct session *s, char *sqlstate, char *msg, size_t cap)
{
	enum policy_verdict v = s->held_decision > 0 ? POLICY_ALLOW : POLICY_DENY;

	strcpy(sqlstate, "42501");
	snprintf(msg, cap, "%s", s->held_msg);
	s->held_id = 0;
	s->held_decision = 0;
	free(s->held_sql);
	s->held_sql = NULL;
	s->held_len = 0;
	json_decref(s->held_extra);
	s->held_extra = NULL;
	return v;
}

/* Whether Binds are decided: only a rule that holds statements for approval needs
 * it (each execution of a statement is approved on its own). */
static bool bind_checked(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = s->rule[0] ? session_rule(env, s) : NULL;

	return r && r->statements.set && r->statements.approve;
}

/*
 * The parameters of a whole Bind body as JSON: text format as text (escape_bytes
 * when not UTF-8, its index then in *ret_escaped), binary as "\x" and hex, NULL as
 * null; "****" for each when masked. Its statement name in *ret_stmt. NULL when the
 * body is malformed or out of memory.
 */
json_t *session_bind_params(const uint8_t *body, size_t blen, bool masked, json_t **ret_escaped, const char **ret_stmt,
			    size_t *ret_stmt_len)
{
	const uint8_t *p = body, *end = body + blen, *fmts;
	size_t portal = strnlen((const char *)p, blen), stmt_len;
	const char *stmt;
	unsigned nfmt, nparams;
	json_t *params, *escaped;

	if (portal >= blen)
		return NULL;
	stmt = (const char *)p + portal + 1;
	stmt_len = strnlen(stmt, (size_t)(end - (const uint8_t *)stmt));
	p = (const uint8_t *)stmt + stmt_len + 1;
	if (p + 2 > end)
		return NULL;
	nfmt = (unsigned)(p[0] << 8 | p[1]);
	fmts = p + 2;
	p += 2 + 2 * (size_t)nfmt;
	if (p + 2 > end)
		return NULL;
	nparams = (unsigned)(p[0] << 8 | p[1]);
	p += 2;
	if (!(params = json_array()) || !(escaped = json_array())) {
		json_decref(params);
		return NULL;
	}
	for (unsigned i = 0; i < nparams; i++) {
		int32_t len;
		int fmt = nfmt == 0 ? 0 : (fmts[2 * (nfmt == 1 ? 0 : i) + 1] != 0);
		bool esc = false;
		json_t *v;

		if (p + 4 > end || (nfmt > 1 && i >= nfmt))
			break;
		len = (int32_t)pgwire_get32(p);
		p += 4;
		if (len > end - p)
			break;
		if (len < 0) {
			v = json_null();
		} else if (masked) {
			v = json_string("****");
		} else if (fmt == 0) {
			v = escape_json((const char *)p, (size_t)len, &esc);
		} else {
			char *hex = malloc(2 * (size_t)len + 3);

			if (hex) {
				hex[0] = '\\';
				hex[1] = 'x';
				hex_encode(p, (size_t)len, hex + 2);
			}
			v = hex ? json_string(hex) : NULL;
			free(hex);
		}
		json_array_append_new(params, v);
		if (esc)
			json_array_append_new(escaped, json_integer(i));
		if (len > 0)
			p += len;
	}
	*ret_escaped = escaped;
	*ret_stmt = stmt;
	*ret_stmt_len = stmt_len;
	return params;
}

/*
 * The verdict on one execution of a prepared statement: the Bind at body. A
 * statement that needs approval is held here, with its text and parameters, each
 * time; one pgtether cannot follow is denied (the rule holds statements for
 * approval: bind_checked).
 */
static enum policy_verdict check_bind(struct session_env *env, struct session *s, const uint8_t *body, size_t blen,
				      char *sqlstate, char *msg, size_t cap)
{
	const struct policy_rule *r = session_rule(env, s);
	struct sqlclass_result c = { 0 };
	struct prepared_view pv = { 0 };
	json_t *params = NULL, *escaped = NULL, *extra;
	const char *stmt = "";
	size_t stmt_len = 0, text_len = 0;
	char why[300], *text = NULL;
	enum policy_verdict v;
	int rc;

	strcpy(sqlstate, "42501");
	/* the statement name first: the parameters are read only for an approver (no
	 * allocation per execution otherwise) */
	size_t portal = strnlen((const char *)body, blen);

	if (portal < blen) {
		stmt = (const char *)body + portal + 1;
		stmt_len = strnlen(stmt, blen - portal - 1);
	}
	if (portal >= blen || portal + 1 + stmt_len >= blen) {
		snprintf(msg, cap, "pgtether: a Bind message that cannot be read is denied");
		return POLICY_DENY;
	}
	rc = prepared_resolve(&s->stmts, stmt, true, &pv);
	if (rc < 0) {
		snprintf(msg, cap, "pgtether: statement \"%.64s\": %s, and rule '%s' holds statements for approval, so its execution is denied",
			 stmt, rc == -ENOENT ? "pgtether did not see it prepared in this session" : "what it runs cannot be followed",
			 r->name);
		v = POLICY_DENY;
	} else {
		c.classes = pv.classes;
		v = policy_statement_verdict(r, &c, why, sizeof(why));
		if (v == POLICY_DENY)
			snprintf(msg, cap, "pgtether: %s", why);
		else if (v == POLICY_APPROVE && !(text = prepared_view_text(&pv, &text_len))) {
			/* the approver would not see all it may run */
			snprintf(msg, cap, "pgtether: %s, but not every statement prepared under its name in this session was kept to be shown to an approver, so it is denied", why);
			v = POLICY_DENY;
		}
	}
	if (v == POLICY_APPROVE && !(params = session_bind_params(body, blen, false, &escaped, &stmt, &stmt_len))) {
		snprintf(msg, cap, "pgtether: a Bind message whose parameters cannot be read is denied");
		v = POLICY_DENY;
	}
	if (v == POLICY_APPROVE) {
		s->stmt_classes = c.classes;
		s->held_timeout = r->statements.approval_timeout;
		snprintf(msg, cap, "%s%s", why, pv.n_texts > 1 ? " (one of several statements prepared under its name)" : "");
		extra = json_pack("{s:o, s:o, s:o}", "statement", escape_json(stmt, stmt_len, NULL), "params", params,
				  "params_escaped", escaped);
		client_side_hold(env, s, text, text_len, msg, extra);
	}
	if (v != POLICY_ALLOW && sessrec_statement(env, s, 'B', text ? text : "", text_len, v, sqlstate, msg) < 0 && v == POLICY_APPROVE) {
		/* not recorded: not run */
		client_side_unhold(s);
		s->notice_len = 0;
		snprintf(msg, cap, "pgtether: the statement cannot be recorded, so it is not run");
		strcpy(sqlstate, "53100");
		v = POLICY_DENY;
	}
	free(text);
	return v;
}

static int c2u_reserve(struct session *s, size_t start, size_t mlen)
{
	return session_hold_room(s, &s->c2u, start, mlen, 0);
}

/*
 * Puts the catalog query for the rule's masks into c2u at pos (a message boundary
 * before which everything is answered): its answer is taken by server_side_lookup_scan, not
 * relayed. Returns the bytes added, 0 when the rule needs no catalog (resolved at
 * once), or -ENOMEM.
 */
long client_side_lookup_insert(struct session_env *env, struct session *s, const struct policy_rule *r, size_t pos)
{
	struct session_buf *b = &s->c2u;
	int err;
	char *q = maskset_query(r, &s->masks, &err);
	size_t qlen, n;

	maskset_reset(&s->masks);
	if (!q) {
		s->mask_epoch = env->mask_epoch;
		s->mask_gen = env->gen;
		return err;
	}
	qlen = strlen(q) + 1;
	n = PGWIRE_HEADER + qlen;
	if (session_buf_reserve(s, b, b->len + n) < 0) {
		free(q);
		return -ENOMEM;
	}
	memmove(b->data + pos + n, b->data + pos, b->len - pos);
	b->data[pos] = 'Q';
	pgwire_put32(b->data + pos + 1, (uint32_t)(4 + qlen));
	memcpy(b->data + pos + PGWIRE_HEADER, q, qlen);
	b->len += n;
	free(q);
	s->lookup_active = true;
	s->lookup_epoch = env->mask_epoch;
	s->refresh_due_since = 0;
	return (long)n;
}

/*
 * Whether the Query or Parse sql[0..len) needs the server's search_path first (its
 * rule has table rules, it names a table without a schema, and no class denies it
 * anyway): PATH_ASK when the server can be asked now, PATH_WAIT when it can once
 * the answers to what went before are in (every earlier message ends in a Sync or
 * is a Query, so they will come), else PATH_NO (check_statement then denies the
 * names it cannot resolve). Rules without table rules stop at the first test.
 */
enum path_due { PATH_NO, PATH_ASK, PATH_WAIT };

static enum path_due path_due(struct session_env *env, struct session *s, const char *sql, size_t len)
{
	const struct policy_rule *r = session_rule(env, s);
	struct sqlclass_result tmp = { 0 };
	const struct sqlclass_result *c = &tmp;
	char why[300];
	bool due;
	int rc;

	if (!r || ((!r->statements.set || (!r->statements.n_tables_allow && !r->statements.n_tables_deny)) &&
		   !sqlguard_may_touch(sql, len)) ||
	    s->path_fresh || len > env->cfg->max_statement_bytes || s->c_unsynced || s->held_id)
		return PATH_NO; /* (pg_settings, for sqlclass_settings_row, is a word the scan finds) */
	if (!client_side_can_ask(s) && s->pending_count == 0)
		return PATH_NO; /* an aborted transaction: nothing will change that first */
	if (env->sqlcache)
		rc = sqlclass_cached(env->sqlcache, sql, len, policy_dangerous(&env->cfg->policy), &tmp, &c);
	else
		rc = sqlclass_classify(sql, policy_dangerous(&env->cfg->policy), &tmp);
	/* denied whatever the names resolve to (a class): no need to ask */
	due = rc == 0 && searchpath_needed(r, c) && gate_qualified_verdict(r, c, why, sizeof(why)) != POLICY_DENY;
	sqlclass_release(&tmp);
	if (due) {
		const struct searchpath_scan *sc = path_scan(s, sql, len, &rc);

		due = sc && sc->n_unqualified > 0;
	}
	return !due ? PATH_NO : client_side_can_ask(s) ? PATH_ASK : PATH_WAIT;
}

/*
 * Puts the search_path lookup for sql's names into c2u at pos, before the message
 * that names them (extended-query messages ending in Sync: pos is a point with
 * nothing outstanding); its answer is taken by server_side_lookup_scan. The catalog query is
 * prepared once per session, so it is planned once, not per statement. Returns the
 * bytes added, 0 when sql cannot be scanned (check_statement then denies), or
 * -ENOMEM.
 */
static long path_insert(struct session *s, const char *sql, size_t len, size_t pos)
{
	struct session_buf *b = &s->c2u;
	const struct searchpath_scan *sc;
	int err = 0;
	uint8_t *q = NULL;
	size_t n = 0;

	if ((sc = path_scan(s, sql, len, &err)))
		q = searchpath_request(sc, !s->path_prepared, &n, &err);
	else
		err = 0;
	if (!q)
		return err;
	if (session_buf_reserve(s, b, b->len + n) < 0) {
		free(q);
		return -ENOMEM;
	}
	memmove(b->data + pos + n, b->data + pos, b->len - pos);
	memcpy(b->data + pos, q, n);
	b->len += n;
	free(q);
	searchpath_state_release(&s->path);
	s->lookup_active = true;
	s->path_lookup = true;
	s->path_prepared = true; /* or the lookup fails, and the session ends */
	return (long)n;
}

/*
 * The masks are due to be looked up again, but the session has had no moment with
 * nothing outstanding to do it: true once that has lasted 3 × mask_refresh. A client
 * that never waits (or a pipeline the server discarded part of, whose answers never
 * come) would otherwise keep masks that miss newer views, or, after a reload, NULLs.
 */
static bool mask_refresh_overdue(struct session_env *env, struct session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!s->refresh_due_since) {
		s->refresh_due_since = now.tv_sec ? now.tv_sec : 1;
		return false;
	}
	return now.tv_sec - s->refresh_due_since >= 3 * (time_t)env->cfg->mask_refresh;
}

/* Whether statement `name` (a Bind's) is known to name no masked table. */
bool session_prepared_clean(const struct session *s, const char *name)
{
	return maskednames_clean(&s->maskednames, name);
}

/* Notes what the server will answer in order: a Query ('Q', answered by
 * RowDescriptions of its own), a Describe of the client's ('d') or of pgtether's
 * ('i'), each with the number of the ReadyForQuery that ends its batch. */
static int expect_answer(struct session *s, uint8_t kind)
{
	if (s->desc_count == s->desc_cap) {
		size_t cap = s->desc_cap ? 2 * s->desc_cap : 64;
		struct session_answer *d;

		if (cap > SESSION_MAX_DESCRIBES)
			return -ENOBUFS;
		if (!(d = malloc(cap * sizeof(*d))))
			return -ENOMEM;
		for (size_t i = 0; i < s->desc_count; i++) /* unrolled from the old ring */
			d[i] = s->describes[(s->desc_head + i) % s->desc_cap];
		free(s->describes);
		s->describes = d;
		s->desc_cap = cap;
		s->desc_head = 0;
	}
	s->describes[(s->desc_head + s->desc_count++) % s->desc_cap] = (struct session_answer){ s->c_batch, kind };
	return 0;
}

/* A Query or Sync passed on: the end of a batch, answered by one ReadyForQuery. */
static int sync_point(struct session *s, const struct policy_rule *masking, uint8_t type)
{
	int r;

	if (masking && type == 'Q' && (r = expect_answer(s, 'Q')) < 0)
		return r;
	s->c_batch++;
	return 0;
}

/*
 * Statements whose server text a masked session withholds even when they name no
 * masked table: writes and DDL fire triggers and event triggers, EXECUTE and CALL
 * run what was prepared or defined elsewhere, and any of that code can read a masked
 * column and quote it in a RAISE or an error.
 */
#define SESSION_TAINT_CLASSES (SQL_WRITE | SQL_COPY_IN | SQL_TRUNCATE | SQL_DDL | SQL_DROP | SQL_GRANT | SQL_DYNAMIC)

/* What the server says in answer to the batch being sent now (c_batch) is withheld. */
static void taint_batch(struct session *s)
{
	taint_mark(&s->taint, s->c_batch);
}

/* client_side_filter stops at a message to read it again from its header later (when it
 * is whole, decided, or after what pgtether put before it): the position to stop at. */
static size_t rescan_from(struct session *s, size_t at)
{
	s->cscan.have = 0;
	s->cscan.remaining = 0;
	return at;
}

/* The message types a client sends after login, the ones this file reads (PostgreSQL 15's
 * PostgresMain takes these and no other). Any other type would go upstream unread by the
 * policy: a server that took it (a later protocol's message) would act on it unchecked. */
#define CLIENT_SIDE_TYPES "QPBEDCHSXFdcf"

/* The fault a helper's -errno ends the session with: the client's side runs out of
 * two things only, room for what awaits an answer (-ENOBUFS) and memory. */
static enum fault_code client_side_fault(long err)
{
	return err == -ENOBUFS ? FAULT_PIPELINE_FULL : FAULT_OUT_OF_MEMORY;
}

/*
 * Client → server: follows message boundaries in c2u from c_scan on; drops
 * FunctionCall messages (their refusal is queued in order) and counts sync points.
 * Bytes of a header not yet complete are held back, so a message can still be
 * removed whole. FAULT_NONE, or the fault the session ends with.
 */
enum fault_code client_side_filter(struct session_env *env, struct session *s)
{
	struct session_buf *b = &s->c2u;
	size_t pos = s->c_scan;
	struct pgwire_header h;
	int found, r;

	const struct policy_rule *masking = session_masking_rule(env, s);

	if ((s->held_id && !s->held_decision) || s->lookup_active)
		return FAULT_NONE; /* nothing passes a statement held for approval, or our catalog query */
	while (pos < b->len) {
		if (s->c_drop) {
			size_t n = b->len - pos < s->c_drop ? b->len - pos : s->c_drop;

			memmove(b->data + pos, b->data + pos + n, b->len - pos - n);
			b->len -= n;
			s->c_drop -= (uint32_t)n;
			continue;
		}
		size_t start = pos - s->cscan.have;
		long used = pgwire_scan_next(&s->cscan, b->data + pos, b->len - pos, &h, &found);

		if (used < 0)
			return FAULT_CLIENT_PROTOCOL;
		pos += (size_t)used;
		if (!found)
			continue;
		if (!h.type || !strchr(CLIENT_SIDE_TYPES, h.type))
			return FAULT_CLIENT_MESSAGE_TYPE; /* checked by nothing here: it would pass unread */
		if (cancel_holds(s) && h.type != 'd' && h.type != 'c' && h.type != 'f' && h.type != 'S' &&
		    h.type != 'H' && h.type != 'X') {
			/* pgtether's own tries of a cancel its client was answered for go
			 * on: what the client sends next must not be what one of them hits
			 * (cancel_ungate takes it again) */
			s->cancel_held = true;
			pos = rescan_from(s, start);
			break;
		}
		if (h.type == 'X')
			s->c_terminated = true; /* the server closing next is its answer */
		if (h.type == 'E')
			s->c_exec_open = true; /* what a cancel amid unsynced messages is for */
		if (s->read_only && !s->c_unsynced && awaits_server(s) &&
		    (h.type == 'Q' || h.type == 'P' || h.type == 'B' || h.type == 'E')) {
			/* A read-only session's next transaction starts only once the
			 * server has answered the last: its ParameterStatus of
			 * default_transaction_read_only=off (server-side code) comes just
			 * before that ReadyForQuery and ends the session
			 * (session_param_status); a pipelined Query would already run
			 * read-write. session_relay_event comes back once the answers are in. */
			s->path_waiting = true;
			s->cscan.have = 0;
			s->cscan.remaining = 0;
			pos = start;
			break;
		}
		/* Execute too: a portal bound before a reload that added a mask returns its
		 * later rows under the masks of now */
		if (masking && (h.type == 'Q' || h.type == 'P' || h.type == 'B' || h.type == 'E') &&
		    s->mask_epoch != env->mask_epoch) {
			if (!s->c_unsynced && s->pending_count == 0 && s->tx_status != 'E' && !s->held_id &&
			    !s->want_status && pgwire_scan_at_boundary(&s->sscan)) {
				/* the catalog changed (DDL, reload, mask_refresh): resolve the
				 * masks again first, now that the server has answered everything */
				long n = client_side_lookup_insert(env, s, masking, start);

				if (n < 0)
					return client_side_fault(n);
				if (n > 0) {
					pos = rescan_from(s, start + (size_t)n);
					break;
				}
			} else if (mask_refresh_overdue(env, s)) {
				return FAULT_MASKS_STALE;
			}
		}
		if (masking && h.type == 'E') {
			/* every Execute gets a Describe of its portal first, so the rows it
			 * returns always come after the description masks need (drivers skip
			 * Describe for statements they prepared) */
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len, plen, dlen;

			if (h.body_len > 1024)
				return FAULT_CLIENT_EXECUTE;
			if (b->len - start < mlen) {
				if ((r = c2u_reserve(s, start, mlen)) < 0)
					return client_side_fault(r);
				pos = rescan_from(s, start);
				break;
			}
			plen = strnlen((const char *)b->data + start + PGWIRE_HEADER, h.body_len);
			if (plen + 5 != h.body_len)
				return FAULT_CLIENT_EXECUTE;
			dlen = PGWIRE_HEADER + 1 + plen + 1;
			if (session_buf_reserve(s, b, b->len + dlen) < 0)
				return FAULT_OUT_OF_MEMORY;
			memmove(b->data + start + dlen, b->data + start, b->len - start);
			b->data[start] = 'D';
			pgwire_put32(b->data + start + 1, (uint32_t)(dlen - 1));
			b->data[start + PGWIRE_HEADER] = 'P';
			memcpy(b->data + start + PGWIRE_HEADER + 1, b->data + start + dlen + PGWIRE_HEADER, plen + 1);
			b->len += dlen;
			if ((r = expect_answer(s, 'i')) < 0)
				return client_side_fault(r);
			s->cscan.remaining = 0;
			pos = start + dlen + mlen;
			s->c_unsynced = true;
			continue;
		}
		if (masking && h.type == 'D' && (r = expect_answer(s, 'd')) < 0)
			return client_side_fault(r);
		if (h.type == 'F') {
			/* inside an extended-query batch not yet closed by Sync the refusal
			 * would have no place in the answers; and each refusal owed takes
			 * room kept in u2c, which holds four */
			if (s->c_unsynced || s->refusals_owed >= 4)
				return FAULT_CLIENT_FUNCTION_CALL;
			s->refusals_owed++;
			memmove(b->data + start, b->data + pos, b->len - pos);
			b->len -= pos - start;
			pos = start;
			s->c_drop = h.body_len;
			s->cscan.remaining = 0;
			if ((r = pending_push(s, 'F')) < 0)
				return client_side_fault(r);
		} else if ((h.type == 'Q' || h.type == 'P') && s->rule[0]) {
			/* decided whole: wait until the message is all here */
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len;
			const char *sql;
			char sqlstate[6], msg[400];
			size_t sql_len;
			bool touches = masking != NULL; /* a held statement: as if it did */
			json_t *extra = NULL;

			if (b->len - start < mlen) {
				if (h.body_len > env->cfg->max_statement_bytes + 256u) {
					/* too long to hold for a check: refused without reading it */
					return FAULT_STATEMENT_TOO_LONG;
				}
				if ((r = c2u_reserve(s, start, mlen)) < 0)
					return client_side_fault(r);
				pos = rescan_from(s, start);
				break;
			}
			sql = (const char *)b->data + start + PGWIRE_HEADER;
			if (h.type == 'P') {
				const char *z = memchr(sql, 0, h.body_len);

				if (!z)
					return FAULT_CLIENT_STRING; /* a statement name without its NUL */
				sql = z + 1;
			}
			sql_len = strnlen(sql, (size_t)((const char *)b->data + start + mlen - sql));
			if (sql + sql_len >= (const char *)b->data + start + mlen)
				return FAULT_CLIENT_STRING; /* no NUL inside the message */
			s->cscan.remaining = 0;
			enum policy_verdict v;

			if (s->held_id) {
				/* decided: the held statement runs or fails */
				v = held_outcome(s, sqlstate, msg, sizeof(msg));
			} else {
				/* names without a schema: ask the server for its search_path first */
				enum path_due due = path_due(env, s, sql, sql_len);
				long n = due == PATH_ASK ? path_insert(s, sql, sql_len, start) : 0;

				if (due == PATH_WAIT) {
					/* session_relay_event comes back once the answers are in */
					s->path_waiting = true;
					s->cscan.have = 0;
					pos = start;
					break;
				}
				if (n < 0)
					return client_side_fault(n);
				if (n > 0) {
					pos = rescan_from(s, start + (size_t)n);
					break;
				}
				s->path_parse = h.type == 'P';
				v = check_statement(env, s, sql, sql_len,
						    h.type == 'P' ? (const char *)b->data + start + PGWIRE_HEADER : NULL,
						    sqlstate, msg, sizeof(msg), &touches, &extra);
				s->path_fresh = false; /* an answer serves one message */
				if (s->path_prepared && ((s->stmt_classes & SQL_DYNAMIC) ||
							 ((s->stmt_classes & SQL_SESSION) && (strcasestr(sql, "dealloc") || strcasestr(sql, "discard")))))
					s->path_prepared = false; /* DEALLOCATE ALL, DISCARD ALL, code: prepare again */
			}
			if (masking && masking->n_masks && v != POLICY_DENY &&
			    (touches || (s->stmt_classes & SESSION_TAINT_CLASSES)))
				taint_batch(s);
			if (masking && (s->stmt_classes & SQL_DYNAMIC))
				maskednames_lose(&s->maskednames); /* PREPARE and DEALLOCATE change named statements */
			if (h.type == 'P' && masking)
				maskednames_note(&s->maskednames, (const char *)b->data + start + PGWIRE_HEADER, touches);
			if (h.type == 'P' && v == POLICY_APPROVE)
				v = POLICY_ALLOW; /* a Parse runs nothing: each Bind of it is held (one approval, one execution) */
			if (v == POLICY_APPROVE)
				client_side_hold(env, s, sql, sql_len, msg, extra);
			else
				json_decref(extra);
			if (sessrec_statement(env, s, h.type, sql, sql_len, v, sqlstate, msg) < 0 && v != POLICY_DENY) {
				v = POLICY_DENY;
				strcpy(sqlstate, "53100");
				snprintf(msg, sizeof(msg), "pgtether: the statement cannot be recorded (%s), so it is not run",
					 s->rec && s->rec->error ? strerror(-s->rec->error) : "write failed");
				if (s->held_id) {
					client_side_unhold(s);
					s->notice_len = 0;
				}
			}
			if (v == POLICY_APPROVE) {
				s->cscan.have = 0;
				pos = start;
				break;
			}
			if (v == POLICY_ALLOW) {
				pos = start + mlen;
			} else {
				struct logline l;

				log_begin(&l, LOG_LEVEL_WARN, "stmt.denied");
				log_u64(&l, "id", s->id);
				log_u64(&l, "pid", s->origin.tgid);
				log_str(&l, "cgroup", s->facts.cgroup);
				log_str(&l, "rule", s->rule);
				if (s->token_sub[0])
					log_str(&l, "sub", s->token_sub);
				log_str(&l, "message", h.type == 'Q' ? "query" : "parse");
				log_str(&l, "sqlstate", sqlstate);
				log_str(&l, "msg", msg);
				log_end(&l, LOG_LEVEL_WARN);
				if ((r = substitute_sentinel(env, s, start, mlen, sqlstate, msg)) < 0)
					return client_side_fault(r);
				pos = start + (size_t)r;
			}
			if (h.type == 'Q') {
				prepared_end_batch(&s->stmts, !s->c_unsynced);
				s->c_unsynced = false;
				s->batch_denied = false;
				if ((r = pending_push(s, 'Q')) < 0 || (r = sync_point(s, masking, 'Q')) < 0)
					return client_side_fault(r);
			} else {
				s->c_unsynced = true;
			}
		} else if (h.type == 'Q' || h.type == 'S') {
			prepared_end_batch(&s->stmts, h.type == 'Q' && !s->c_unsynced);
			s->c_unsynced = false;
			s->batch_denied = false;
			if ((r = pending_push(s, h.type)) < 0 || (r = sync_point(s, masking, h.type)) < 0)
				return client_side_fault(r);
		} else if (h.type == 'B' && (s->rec || bind_checked(env, s) || (masking && masking->n_masks))) {
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len;
			bool check = bind_checked(env, s);

			s->c_unsynced = true;
			if (h.body_len > env->cfg->max_statement_bytes + 256u && !check) {
				if (masking && masking->n_masks)
					taint_batch(s); /* its statement is not read: as if it named a masked table */
				sessrec_event(env, s, "bind", json_pack("{s:I}", "bytes", (json_int_t)h.body_len), false);
				continue; /* too long to hold for the record: its size only */
			}
			if (h.body_len > env->cfg->max_statement_bytes + 256u)
				return FAULT_STATEMENT_TOO_LONG; /* too long to hold for a check */
			if (b->len - start < mlen) {
				if ((r = c2u_reserve(s, start, mlen)) < 0)
					return client_side_fault(r);
				pos = rescan_from(s, start);
				break;
			}
			if (masking && masking->n_masks && !maskednames_bind_clean(&s->maskednames, b->data + start + PGWIRE_HEADER, h.body_len))
				taint_batch(s);
			s->cscan.remaining = 0;
			if (check) {
				char sqlstate[6], msg[400];
				enum policy_verdict v = s->held_id ? held_outcome(s, sqlstate, msg, sizeof(msg))
								   : check_bind(env, s, b->data + start + PGWIRE_HEADER,
										h.body_len, sqlstate, msg, sizeof(msg));

				if (v == POLICY_APPROVE) {
					s->cscan.have = 0;
					pos = start;
					break;
				}
				if (v == POLICY_DENY) {
					if ((r = substitute_sentinel(env, s, start, mlen, sqlstate, msg)) < 0)
						return client_side_fault(r);
					pos = start + (size_t)r;
					continue;
				}
			}
			if (s->rec)
				sessrec_bind(env, s, masking, b->data + start + PGWIRE_HEADER, h.body_len);
			pos = start + mlen;
		} else if (strchr("PBEDCH", h.type)) {
			s->c_unsynced = true;
			if (h.type == 'C')
				s->path_prepared = false; /* it may close the lookup's statement */
		}
	}
	s->c_scan = pos;
	b->ready = pos - s->cscan.have;
	if (b->eof) {
		/* the client is gone: a header it never finished will never be sent */
		b->len = b->ready;
		s->c_scan = b->len;
		s->cscan.have = 0;
	}
	return FAULT_NONE;
}
