/*
 * Server → client in a relaying session: follows the server's messages in u2c,
 * notes each ReadyForQuery, puts what pgtether owes the client (refusals, notices) at
 * message boundaries, turns the errors of statements substituted for denied ones back
 * into their denials, and, in a session with masks, rewrites rows and withholds text
 * that could quote a masked value; takes the answers of pgtether's own catalog queries
 * (masks, search_path). Private to the session's modules (session_int.h).
 */
#include "server_side.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "log.h"
#include "privsep.h"
#include "worker.h"
#include "sessrec.h"
#include "upstream.h"

/* A ParameterStatus shorter than this is read whole before it goes on; a longer one
 * streams, once its first SERVER_SETTING_NAME body bytes (the name) are read. */
#define SERVER_SETTING_READ 1024
#define SERVER_SETTING_NAME 64

static size_t notification_text(struct session_env *env, struct session *s, size_t start, size_t mlen);
static long withhold_detail(struct session *s, size_t start, size_t mlen);

/* A session's buffers grow under the daemon-wide memory_budget (sbuf.h). */
static inline int session_mem_take(struct session *s, size_t n)
{
	return sbuf_mem_take(&s->acct, s->env->cfg->memory_budget, n);
}

static inline void session_mem_give(struct session *s, size_t n)
{
	sbuf_mem_give(&s->acct, n);
}

static const char fastpath_refusal[] =
	"pgtether: the fast-path function call interface (FunctionCall message) is not allowed: "
	"nothing the policy cannot see reaches the database; call the function in SQL instead";

/* Inserts the refusals now due into u2c at pos (a server message boundary). */
static size_t inject_due(struct session *s, size_t pos)
{
	uint8_t m[sizeof(fastpath_refusal) + 64];
	size_t total = 0;

	/* a notice may go between any two server messages */
	if (s->notice_len && s->notice_len <= sbuf_room(&s->u2c)) {
		memmove(s->u2c.data + pos + s->notice_len, s->u2c.data + pos, s->u2c.len - pos);
		memcpy(s->u2c.data + pos, s->notice, s->notice_len);
		s->u2c.len += s->notice_len;
		pos += s->notice_len;
		total += s->notice_len;
		s->notice_len = 0;
	}
	while (s->pending_count && s->pending[s->pending_head] == 'F') {
		size_t n = pgwire_error_response(m, sizeof(m), "ERROR", "0A000", fastpath_refusal, NULL);

		n += pgwire_build_ready_for_query(m + n, sizeof(m) - n, (char)s->tx_status);
		if (n > sbuf_room(&s->u2c))
			break; /* SESSION_INJECT_RESERVE makes this unreachable in practice */
		memmove(s->u2c.data + pos + n, s->u2c.data + pos, s->u2c.len - pos);
		memcpy(s->u2c.data + pos, m, n);
		s->u2c.len += n;
		pos += n;
		total += n;
		s->pending_head = (s->pending_head + 1) % SESSION_MAX_PENDING;
		s->pending_count--;
		s->refusals_owed--;
	}
	return total;
}

/*
 * Room kept free in u2c when reading from the upstream. Rows that masks make longer
 * are rewritten in place, so a masked session reads into half the buffer only: the
 * rows it holds can grow into the other half without the buffer growing.
 */
size_t server_side_reserve(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = session_masking_rule(env, s);

	if (r && r->n_masks && !s->lookup_active && s->u2c.cap / 2 > SESSION_INJECT_RESERVE)
		return s->u2c.cap / 2;
	return SESSION_INJECT_RESERVE;
}

/* The lookup failed: masks (or where names lead) cannot be known, so the session
 * cannot go on. */
static void lookup_failed(struct session_env *env, struct session *s, const char *why)
{
	enum fault_code f = s->path_lookup ? FAULT_PATH_LOOKUP : FAULT_MASK_LOOKUP;
	struct fault_text t;

	session_fault_text(s, f, why, &t);
	log_error(s->path_lookup ? "searchpath" : "mask", "id=%llu: %s", (unsigned long long)s->id, t.msg);
	s->lookup_active = false;
	s->path_lookup = false;
	session_fault(env, s, f, why);
}

/*
 * Server → pgtether while the catalog query is out: takes its rows, and drops its
 * messages, but passes on what the server says of its own accord (notices,
 * parameter changes, notifications). Returns 1 when the answer is complete, 0 when
 * more is to come, -1 when the session ended.
 */
int server_side_lookup_scan(struct session_env *env, struct session *s)
{
	const struct policy_rule *r = session_masking_rule(env, s);
	struct session_buf *b = &s->u2c;
	size_t pos = s->s_scan;
	int rc;

	while (b->len - pos >= PGWIRE_HEADER) {
		uint8_t type = b->data[pos];
		uint32_t len = pgwire_get32(b->data + pos + 1);
		size_t mlen = 1 + (size_t)len;
		const uint8_t *body = b->data + pos + PGWIRE_HEADER;

		if (len < 4 || len > (16u << 20)) {
			lookup_failed(env, s, "the server's answer is malformed or too large");
			return -1;
		}
		if (b->len - pos < mlen) {
			if (session_hold_room(s, b, pos, mlen, SESSION_INJECT_RESERVE) < 0) {
				lookup_failed(env, s, s->acct.refused ? "memory_budget exhausted" : "out of memory");
				return -1;
			}
			break;
		}
		if (type == 'N' && r && r->n_masks) {
			/* the client's, as any notice of a masking session: without its DETAIL */
			long n = withhold_detail(s, pos, mlen);

			if (n < 0) {
				lookup_failed(env, s, "out of memory");
				return -1;
			}
			pos += (size_t)n;
			continue;
		}
		if (type == 'S' && !session_param_status(env, s, body, len - 4)) {
			/* a setting that ends the session, as server_side_scan reads it: the
			 * client hears nothing of it, the error goes where it was */
			b->ready = b->len = pos;
			s->s_scan = pos;
			s->lookup_active = false;
			s->path_lookup = false;
			session_fault(env, s, session_param_fault(s), NULL);
			return -1;
		}
		if (type == 'N' || type == 'S' || type == 'A') {
			/* the client's */
			pos += type == 'A' && r && r->n_masks ? notification_text(env, s, pos, mlen) : mlen;
			continue;
		}
		if (type == 'E') {
			char m[400], said[300];

			snprintf(m, sizeof(m), "the server said: %s", upstream_error_message(body, len - 4, said, sizeof(said)));
			lookup_failed(env, s, m);
			return -1;
		}
		if (type == 'D' && s->path_lookup) {
			if ((rc = searchpath_add_row(&s->path, body, len - 4)) < 0) {
				lookup_failed(env, s, "a row of the answer is not understood");
				return -1;
			}
		} else if (type == 'D') {
			uint32_t flen = len >= 10 ? pgwire_get32(body + 2) : 0;

			rc = -EINVAL;
			if (!r || len < 10 || flen > len - 10 ||
			    (rc = maskset_add_row(&s->masks, r, (const char *)body + 6, flen)) < 0) {
				char lim[300];

				/* fail closed: what is past a limit would go unmasked or count as built in */
				snprintf(lim, sizeof(lim), "the answer is over pgtether's limits (%d masked columns, %d views, "
					 "%d names of functions and operators outside pg_catalog that calls may resolve to)",
					 MASKSET_MAX_COLS, MASKSET_MAX_VIEWS, MASKSET_MAX_SHADOWS);
				lookup_failed(env, s, !r ? "the rule is gone" : rc == -E2BIG ? lim : "a row of the answer is not understood");
				return -1;
			}
		}
		if (type == 'Z' && s->lookup_login) {
			s->tx_status = body[0];
			pos += mlen; /* the client's first ReadyForQuery */
		} else {
			memmove(b->data + pos, b->data + pos + mlen, b->len - pos - mlen);
			b->len -= mlen;
		}
		if (type == 'Z' && s->path_lookup) {
			s->s_scan = b->ready = pos;
			s->lookup_active = false;
			s->path_lookup = false;
			s->path_fresh = true;
			return 1;
		}
		if (type == 'Z') {
			s->s_scan = b->ready = pos;
			s->lookup_active = false;
			if (r && (rc = maskset_finish(&s->masks, r)) < 0) {
				lookup_failed(env, s, strerror(-rc));
				return -1;
			}
			s->mask_epoch = s->lookup_epoch;
			s->mask_gen = env->gen;
			s->lookup_login = false;
			log_msg(LOG_LEVEL_DEBUG, "mask", "id=%llu: %zu masked columns resolved", (unsigned long long)s->id, s->masks.n);
			return 1;
		}
	}
	s->s_scan = b->ready = pos;
	return 0;
}

/* The session's memory budget, for the row buffer of rowmask. */
static int session_rowmask_take(void *arg, size_t n)
{
	return session_mem_take(arg, n);
}

static void session_rowmask_give(void *arg, size_t n)
{
	session_mem_give(arg, n);
}

/*
 * Masks the DataRows from u2c[start] on (the first one whole), as many as are whole
 * in the buffer, in one pass: they are rewritten into s->rows.row and put back in one
 * move. Returns the length they have now (*used: the length they had), or -errno.
 */
static long mask_rows(struct session_env *env, struct session *s, const struct policy_rule *r, size_t start,
		      size_t *used)
{
	struct session_buf *b = &s->u2c;
	size_t p = start, o = 0;
	const struct rowmask_budget budget = { session_rowmask_take, session_rowmask_give, s };
	/* indexes resolved under another snapshot may point at another mask */
	const struct rowmask_keys keys = { s->mask_gen == env->gen ? r : NULL, env->cfg->mask_key, env->cfg->mask_hmac };
	int rc;

	while (b->len - p >= PGWIRE_HEADER && b->data[p] == 'D') {
		size_t mlen = 1 + (size_t)pgwire_get32(b->data + p + 1), was = o;

		if (b->len - p < mlen)
			break;
		if ((rc = rowmask_row(&s->rows, &keys, &budget, b->data + p, mlen, &o)) < 0)
			return rc;
		/* rows that grew must still fit, with SESSION_INJECT_RESERVE kept free for
		 * what pgtether inserts: a row that does not fit waits until what is
		 * before it has gone out, and only a row first in the buffer that cannot
		 * fit even then makes the buffer bigger (for the rest of the session) */
		if (o > p + mlen - start && o - (p + mlen - start) + SESSION_INJECT_RESERVE > sbuf_room(b)) {
			if (p > start) {
				o = was;
				break;
			}
			if (start > b->off)
				return -EAGAIN; /* after what is before it has gone out */
			if (b->len + (o - mlen) > 2 * (size_t)SESSION_MAX_MASKED_ROW)
				return -E2BIG;
			if (session_buf_reserve(s, b, b->len + (o - mlen) + SESSION_INJECT_RESERVE + 1) < 0)
				return -ENOMEM;
			s->u2c_kept = true;
		}
		/* recorded once it goes: a row that waits is masked again later */
		if (s->rows_to_record)
			sessrec_row(env, s, s->rows.row + was, o - was);
		p += mlen;
		s->rows_masked++;
	}
	memmove(b->data + start + o, b->data + p, b->len - p);
	memcpy(b->data + start, s->rows.row, o);
	b->len = b->len - (p - start) + o;
	*used = p - start;
	return (long)o;
}

/* A RowDescription or NoData: true when it answers a Describe pgtether added. */
static bool describe_answer_ours(struct session *s)
{
	uint8_t kind;

	if (!s->desc_count || s->describes[s->desc_head].batch != s->s_batch)
		return false;
	kind = s->describes[s->desc_head].kind;
	if (kind == 'Q')
		return false; /* a Query's own result */
	s->desc_head = (s->desc_head + 1) % s->desc_cap;
	s->desc_count--;
	return kind == 'i';
}

/* Whether what the server says now (in answer to batch s_batch) is withheld (taint.h). */
static bool answer_tainted(const struct session *s)
{
	return taint_withheld(&s->taint, s->s_batch, s->c_batch);
}

/* A ReadyForQuery ends a batch: what of it was not answered (skipped after an error)
 * never will be. */
static void batch_answered(struct session *s)
{
	while (s->desc_count && s->describes[s->desc_head].batch == s->s_batch) {
		s->desc_head = (s->desc_head + 1) % s->desc_cap;
		s->desc_count--;
	}
	taint_answered(&s->taint, s->s_batch, s->c_batch, s->tx_status != 'I');
	s->s_batch++;
	rowmask_forget(&s->rows);
}

/* Puts the n bytes of msg in place of the message at b[start..start+mlen), growing b
 * when it is longer. Returns n, or -ENOMEM. */
static long replace_message(struct session *s, struct session_buf *b, size_t start, size_t mlen, const uint8_t *msg,
			    size_t n)
{
	if (n > mlen && session_buf_reserve(s, b, b->len + (n - mlen) + SESSION_INJECT_RESERVE) < 0)
		return -ENOMEM;
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	memcpy(b->data + start, msg, n);
	b->len = b->len - mlen + n;
	return (long)n;
}

/*
 * A whole ErrorResponse or NoticeResponse at u2c[start..start+mlen) of a masking
 * session: its DETAIL goes ("Failing row contains (...)", "Key (email)=(...)" would
 * show masked values), and so does the message of a data exception (class 22: "invalid
 * input syntax for type integer: \"<the value>\""). Returns the message's length now,
 * or -ENOMEM.
 */
static long withhold_detail(struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	uint8_t *p = b->data + start + PGWIRE_HEADER, *end = b->data + start + mlen;
	const char *sev = NULL, *code = NULL;
	uint8_t m[400];
	char text[160];
	size_t n;

	while (p < end && *p) {
		size_t flen = strnlen((const char *)p, (size_t)(end - p)) + 1;

		if (p + flen > end)
			break;
		if (*p == 'V' || (*p == 'S' && !sev))
			sev = (const char *)p + 1;
		else if (*p == 'C')
			code = (const char *)p + 1;
		if (*p == 'D') {
			memmove(p, p + flen, b->len - (size_t)(p + flen - b->data));
			b->len -= flen;
			end -= flen;
			mlen -= flen;
			pgwire_put32(b->data + start + 1, (uint32_t)(mlen - 1));
			continue;
		}
		p += flen;
	}
	if (b->data[start] != 'E' || !code || strncmp(code, "22", 2) != 0)
		return (long)mlen;
	snprintf(text, sizeof(text), "pgtether: data exception %s (the server's message is withheld: it could quote a masked value)",
		 code);
	n = pgwire_error_response(m, sizeof(m), sev ? sev : "ERROR", code, text, NULL);
	return replace_message(s, b, start, mlen, m, n);
}

/*
 * A whole ErrorResponse or NoticeResponse of the server at u2c[start..start+mlen) in
 * a session with masks. The recording gets it as the server sent it. The client gets,
 * in answer to a tainted batch, its severity, SQLSTATE and catalog names with
 * pgtether's words for a message (pgwire_withhold), and otherwise what
 * withhold_detail leaves. Returns its length now, or -ENOMEM.
 */
static long server_text(struct session_env *env, struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	const uint8_t *m = b->data + start;
	const char *code, *con, *col;
	char text[400], codebuf[6], what[160] = "";
	uint8_t out[1024];
	size_t n;

	sessrec_server_message(env, s, m, mlen);
	if (!answer_tainted(s))
		return withhold_detail(s, start, mlen);
	code = pgwire_notice_field(m, mlen, 'C');
	snprintf(codebuf, sizeof(codebuf), "%s", code ? code : m[0] == 'E' ? "XX000" : "01000");
	if ((con = pgwire_notice_field(m, mlen, 'n')))
		snprintf(what, sizeof(what), " (constraint \"%.100s\")", con);
	else if ((col = pgwire_notice_field(m, mlen, 'c')))
		snprintf(what, sizeof(what), " (column \"%.100s\")", col);
	snprintf(text, sizeof(text),
		 "pgtether: the server's %s %s%s is withheld: the statement reads a masked table or runs code "
		 "pgtether cannot follow, so the text could quote a masked value%s",
		 m[0] == 'E' ? "error" : "notice", codebuf, what, s->rec ? " (the session's recording holds it)" : "");
	n = pgwire_withhold(m, mlen, text, out, sizeof(out));
	if (n == 0) {
		/* not well formed, or names too long to keep: the words alone */
		n = pgwire_error_response(out, sizeof(out), m[0] == 'E' ? "ERROR" : "NOTICE", codebuf, text, NULL);
		out[0] = m[0];
	}
	return replace_message(s, b, start, mlen, out, n);
}

/*
 * A whole NotificationResponse at u2c[start..start+mlen) of a session with masks: its
 * payload is free text from any session of the database (pg_notify(ch, email) where
 * pgtether does not look), so the client gets the channel and the sender's pid only;
 * the recording gets the payload. Returns its length now.
 */
static size_t notification_text(struct session_env *env, struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	uint8_t *m = b->data + start;
	const char *chan = (const char *)m + PGWIRE_HEADER + 4;
	size_t n;

	if (mlen < PGWIRE_HEADER + 4 + 2 || m[mlen - 1] != 0)
		return mlen; /* not one: the server's stream is trusted to be well formed */
	if (s->rec && memchr(chan, 0, mlen - PGWIRE_HEADER - 4) != (const void *)(m + mlen - 1))
		sessrec_event(env, s, "notification", json_pack("{s:s?, s:s?}", "channel", chan, "payload",
							      chan + strlen(chan) + 1), false);
	if (!(n = pgwire_notification_strip(m, mlen)))
		return mlen;
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	b->len -= mlen - n;
	return n;
}

/*
 * A whole 'T', 'n' or masked 'D' at u2c[start..start+mlen) of a masking session:
 * RowDescriptions set how rows are masked, answers to Describes pgtether added are
 * dropped, rows are rewritten. Returns the bytes now there from start, or -errno.
 */
static long masked_message(struct session_env *env, struct session *s, const struct policy_rule *r, size_t start,
			   size_t mlen)
{
	struct session_buf *b = &s->u2c;
	uint8_t type = b->data[start];
	size_t used;
	long n;
	int rc;

	if (type == 'D') {
		n = mask_rows(env, s, r, start, &used);
		return n;
	}
	if (type == 'E' || type == 'N')
		return r && r->n_masks ? server_text(env, s, start, mlen) : (long)mlen;
	if (type == 'A')
		return (long)notification_text(env, s, start, mlen);
	if (type == 'T' && (rc = rowmask_describe(&s->rows, r, &s->masks, b->data + start + PGWIRE_HEADER, mlen - PGWIRE_HEADER)) < 0)
		return rc;
	if (type == 'n')
		rowmask_forget(&s->rows);
	if (!describe_answer_ours(s))
		return (long)mlen;
	memmove(b->data + start, b->data + start + mlen, b->len - start - mlen);
	b->len -= mlen;
	return 0;
}

/*
 * The server's ErrorResponse at data[start..start+mlen) of u2c: when it is the
 * syntax error of a statement substituted for a denied one, it becomes the denial.
 * Returns the message's length after that.
 */
static size_t replace_sentinel_error(struct session_env *env, struct session *s, size_t start, size_t mlen,
				     bool *replaced)
{
	static const char near[] = "syntax error at or near \"";
	struct session_buf *b = &s->u2c;
	const uint8_t *p = b->data + start + PGWIRE_HEADER, *end = b->data + start + mlen;
	size_t tag = strlen(env->sentinel_tag);
	uint8_t m[640];
	size_t n;

	while (p < end && *p) {
		const uint8_t *v = p + 1;
		size_t vlen = strnlen((const char *)v, (size_t)(end - v));

		if (*p == 'M' && vlen > sizeof(near) - 1 + tag && memcmp(v, near, sizeof(near) - 1) == 0 &&
		    memcmp(v + sizeof(near) - 1, env->sentinel_tag, tag) == 0) {
			unsigned long seq = strtoul((const char *)v + sizeof(near) - 1 + tag, NULL, 10);
			unsigned slot = (unsigned)(seq % SESSION_MAX_DENIALS);

			n = pgwire_error_response(m, sizeof(m), "ERROR", s->denials[slot].sqlstate, s->denials[slot].msg, NULL);
			if (n == 0 || (n > mlen && n - mlen > sbuf_room(b)))
				return mlen;
			memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
			memcpy(b->data + start, m, n);
			b->len = b->len - mlen + n;
			if (s->sentinels_out)
				s->sentinels_out--;
			*replaced = true;
			return n;
		}
		p = v + vlen + 1;
	}
	return mlen;
}

/*
 * The server's insufficient_privilege (42501) error at u2c[start..start+mlen) of a
 * session whose client named a user other than the role pgtether logged in as: the
 * difference is on purpose, and the error says so in its hint. Returns its length now.
 */
static size_t role_hint(struct session *s, size_t start, size_t mlen)
{
	struct session_buf *b = &s->u2c;
	const char *code = pgwire_notice_field(b->data + start, mlen, 'C');
	char hint[512];
	uint8_t out[2048];
	size_t n;

	if (!code || strcmp(code, "42501"))
		return mlen;
	snprintf(hint, sizeof(hint),
		 "pgtether logged this session in as role \"%s\", which rule '%s' grants, not as the user \"%s\" the client named",
		 s->role, s->rule, s->client_user);
	n = pgwire_add_hint(b->data + start, mlen, hint, out, sizeof(out));
	if (n == 0 || (n > mlen && session_buf_reserve(s, b, b->len + (n - mlen) + SESSION_INJECT_RESERVE) < 0))
		return mlen; /* the server's words alone */
	memmove(b->data + start + n, b->data + start + mlen, b->len - start - mlen);
	memcpy(b->data + start, out, n);
	b->len = b->len - mlen + n;
	return n;
}

/*
 * A ParameterStatus (body: name\0value\0, PostgreSQL protocol 55.7) of a setting
 * statements are read by, or of the read-only mode a read-only rule's session runs
 * in: kept in the session and recorded. false when the session must end, with
 * session_param_fault() saying why: client_encoding is not UTF8, which pgtether reads every
 * statement as, or a read-only session became read-write (server-side code, a DO
 * block, did what check_statement denies the client; PostgreSQL 14+ reports
 * default_transaction_read_only), or the message is not name\0value\0 exactly (no
 * PostgreSQL sends that).
 */
bool session_param_status(struct session_env *env, struct session *s, const uint8_t *body, size_t blen)
{
	const char *name = (const char *)body, *value;
	size_t nl = strnlen(name, blen);
	char *keep;

	if (nl + 1 >= blen || strnlen(name + nl + 1, blen - nl - 1) != blen - nl - 2) {
		/* not PostgreSQL's: a client may read such a setting its own way (pgx
		 * takes the value up to the last byte, NUL or not) */
		s->param_malformed = true;
		return false;
	}
	value = name + nl + 1;
	if (!strcmp(name, "default_transaction_read_only")) {
		if (s->read_only && strcmp(value, "on")) {
			s->read_write_seen = true;
			return false;
		}
		return true;
	}
	if (!strcmp(name, "standard_conforming_strings"))
		keep = s->scs;
	else if (!strcmp(name, "client_encoding"))
		keep = s->client_encoding;
	else
		return true;
	if (keep[0] && strcmp(keep, value) && s->rec)
		/* a change after login: a statement or a function set it */
		sessrec_event(env, s, "setting", json_pack("{s:s, s:s}", "name", name, "value", value), false);
	snprintf(keep, keep == s->scs ? sizeof(s->scs) : sizeof(s->client_encoding), "%s", value);
	return keep != s->client_encoding || !strcmp(value, "UTF8");
}

/* Whether a ParameterStatus body (have bytes of it) names a setting session_param_status
 * keeps or checks: their values are a few bytes. */
static bool param_read_by_pgtether(const uint8_t *body, size_t have)
{
	static const char *const names[] = { "client_encoding", "standard_conforming_strings",
					     "default_transaction_read_only" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]) + 1; /* with its NUL */

		if (have >= n && !memcmp(body, names[i], n))
			return true;
	}
	return false;
}

/* Why session_param_status said the session must end. */
enum fault_code session_param_fault(const struct session *s)
{
	if (s->param_malformed)
		return FAULT_UPSTREAM_PROTOCOL;
	return s->read_write_seen ? FAULT_READ_WRITE : FAULT_CLIENT_ENCODING;
}

/* The fault a helper's -errno ends the session with: the server's stream is not
 * PostgreSQL's (-EPROTO), a row is too large to mask (-E2BIG), or memory ran out. */
static enum fault_code server_side_fault(long err)
{
	return err == -EPROTO ? FAULT_UPSTREAM_PROTOCOL : err == -E2BIG ? FAULT_ROW_TOO_LARGE : FAULT_OUT_OF_MEMORY;
}

bool server_side_cut(struct session *s)
{
	struct session_buf *b = &s->u2c;
	size_t start;

	if (s->u2c_torn)
		return false;
	if (s->sscan.remaining == 0)
		return true; /* at a boundary, or a header not yet whole: not ready, not sent */
	/* s_scan is where the scan stopped inside the message: its start is the header
	 * and the body bytes consumed before (a ReadyForQuery waiting for its status byte
	 * is one with one byte remaining); bytes a TLS write that waits took count as
	 * sent (sbuf_sent) */
	start = PGWIRE_HEADER + (size_t)s->sscan.body_len - s->sscan.remaining;
	if (start > s->s_scan || s->s_scan - start < sbuf_sent(b) || s->s_scan > b->len)
		return false;
	start = s->s_scan - start;
	b->ready = b->len = s->s_scan = start;
	s->sscan.have = 0;
	s->sscan.remaining = 0;
	s->want_status = false;
	s->last_server_type = 0; /* not said: not the server's last word */
	return true;
}

/*
 * Server → client: follows message boundaries in u2c from s_scan on, noting each
 * ReadyForQuery's transaction status and putting due refusals right after it, and
 * turning the errors of substituted statements into their denials.
 */
enum fault_code server_side_scan(struct session_env *env, struct session *s)
{
	struct session_buf *b = &s->u2c;
	size_t pos = s->s_scan, hold = SIZE_MAX;
	struct pgwire_header h;
	enum fault_code f;
	size_t start = SIZE_MAX;
	int found;

	const struct policy_rule *masking = session_masking_rule(env, s);

	if (s->lookup_active)
		return FAULT_NONE; /* server_side_lookup_scan's */
	/* refusals owed with nothing outstanding before them go out at a boundary */
	if (pgwire_scan_at_boundary(&s->sscan) && !s->want_status)
		pos += inject_due(s, pos);
	while (pos < b->len) {
		if (s->want_status) {
			s->tx_status = b->data[pos++];
			s->want_status = false;
			s->rfq_count++; /* what a cancel under way was for has ended */
			cancel_server_ended(s);
			s->sscan.remaining = 0;
			batch_answered(s);
			if (s->pending_count && (s->pending[s->pending_head] == 'S' || s->pending[s->pending_head] == 'Q')) {
				s->pending_head = (s->pending_head + 1) % SESSION_MAX_PENDING;
				s->pending_count--;
			}
			if (s->ddl_done && s->tx_status == 'I') {
				env->mask_epoch++; /* masked sessions look again before their next statement */
				worker_notify(PRIV_DDL, s->id, NULL, 0, -1); /* ... in every worker */
				s->ddl_done = false;
			}
			if (s->pending_count == 0 && !s->c_unsynced)
				s->sentinels_out = 0; /* answered or discarded, every one */
			pos += inject_due(s, pos);
			continue;
		}
		/* where this message starts, if its header is still in the buffer: a header
		 * begun in an earlier read may have been sent already */
		start = pos >= s->sscan.have ? pos - s->sscan.have : SIZE_MAX;
		bool whole_here = start != SIZE_MAX && start >= b->off;
		long used = pgwire_scan_next(&s->sscan, b->data + pos, b->len - pos, &h, &found);

		if (used < 0) {
			f = FAULT_UPSTREAM_PROTOCOL; /* a header: at a boundary, where start is */
			goto fault;
		}
		pos += (size_t)used;
		if (found && (h.type == 'C' || h.type == 'E' || h.type == 'I' || h.type == 's')) {
			/* a statement's end (counted again if the message is held and read
			 * again: only whether it moved matters, cancel_over) */
			s->ends_count++;
			s->c_exec_open = false;
			cancel_server_ended(s);
		}
		if (found && h.type == 'S' && h.body_len >= SERVER_SETTING_READ && whole_here) {
			/* a long setting (PostgreSQL 18's search_path; application_name is cut at 63) goes on
			 * as it comes; one of those pgtether reads never has a value that long,
			 * and is not let by unread */
			if (b->len - start < PGWIRE_HEADER + SERVER_SETTING_NAME) {
				s->sscan.have = 0;
				s->sscan.remaining = 0;
				pos = hold = start;
				break;
			}
			if (param_read_by_pgtether(b->data + start + PGWIRE_HEADER, SERVER_SETTING_NAME)) {
				s->param_malformed = true;
				f = FAULT_UPSTREAM_PROTOCOL;
				goto fault;
			}
		} else if (found && h.type == 'S' && whole_here) {
			/* a setting changed: read whole before it goes on */
			size_t mlen = PGWIRE_HEADER + h.body_len;

			s->sscan.remaining = 0;
			if (b->len - start < mlen) {
				s->sscan.have = 0;
				pos = hold = start;
				break;
			}
			s->last_server_type = h.type;
			if (!session_param_status(env, s, b->data + start + PGWIRE_HEADER, h.body_len)) {
				f = session_param_fault(s);
				goto fault;
			}
			pos = start + mlen;
			pos += inject_due(s, pos);
			continue;
		}
		if (found && h.type == 'E' && (s->sentinels_out || s->role_hint) && h.body_len < 1024 && whole_here) {
			size_t mlen = PGWIRE_HEADER + h.body_len;

			if (b->len - start < mlen) {
				/* held until whole: it may be a denial's (and is not said yet:
				 * not the server's last word, end_relay) */
				s->sscan.have = 0;
				s->sscan.remaining = 0;
				pos = hold = start;
				break;
			}
			s->last_server_type = h.type;
			s->sscan.remaining = 0;
			bool denial = false;
			size_t now = replace_sentinel_error(env, s, start, mlen, &denial);

			if (!denial) {
				/* the server's own */
				if (masking && masking->n_masks) {
					long w = server_text(env, s, start, mlen);

					if (w < 0) {
						f = server_side_fault(w);
						goto fault;
					}
					now = (size_t)w;
				} else {
					sessrec_server_message(env, s, b->data + start, now);
				}
				if (s->role_hint)
					now = role_hint(s, start, now);
			}
			pos = start + now;
			pos += inject_due(s, pos);
			continue;
		}
		if (found && (masking || s->desc_count) && whole_here &&
		    (h.type == 'T' || h.type == 'n' || (masking && (h.type == 'E' || h.type == 'N')) ||
		     (masking && masking->n_masks && h.type == 'A') ||
		     (masking && h.type == 'D' && (s->rows.masked || s->rows_to_record || !s->rows.have_desc)))) {
			size_t mlen = PGWIRE_HEADER + (size_t)h.body_len;
			long now;

			if (h.type == 'D' && !s->rows.have_desc) {
				if (!masking->n_masks)
					goto plain; /* recorded rows only: these are not */
				f = FAULT_ROWS_UNDESCRIBED; /* rows nothing described: they cannot be masked */
				goto fault;
			}
			if (b->len - start < mlen) {
				if (h.type == 'D' && mlen > SESSION_MAX_MASKED_ROW) {
					f = FAULT_ROW_TOO_LARGE;
					goto fault;
				}
				/* reading stops at half the buffer (server_side_reserve): the row must
				 * fit in that half */
				if (session_hold_room(s, b, start, mlen, start + mlen + SESSION_INJECT_RESERVE) < 0) {
					f = FAULT_OUT_OF_MEMORY;
					goto fault;
				}
				s->sscan.have = 0;
				s->sscan.remaining = 0;
				pos = hold = start;
				break;
			}
			s->sscan.remaining = 0;
			if ((now = masked_message(env, s, masking, start, mlen)) == -EAGAIN) {
				/* no room for the masked rows before the client has read */
				s->sscan.have = 0;
				pos = hold = start;
				s->u2c_rescan = true;
				break;
			}
			if (now < 0) {
				f = server_side_fault(now);
				goto fault;
			}
			if (h.type == 'E' && !masking->n_masks)
				sessrec_server_message(env, s, b->data + start, (size_t)now); /* server_text's, when masking */
			s->last_server_type = h.type;
			pos = start + (size_t)now;
			pos += inject_due(s, pos);
			continue;
		}
plain:
		if (found && h.type == 'C' && whole_here && h.body_len >= 5 && b->len - start >= PGWIRE_HEADER + 5 &&
		    (!memcmp(b->data + start + PGWIRE_HEADER, "CREAT", 5) || !memcmp(b->data + start + PGWIRE_HEADER, "ALTER", 5) ||
		     !memcmp(b->data + start + PGWIRE_HEADER, "DROP ", 5)))
			s->ddl_done = true; /* the catalog changed: masks are resolved again */
		if (found && s->rec && (h.type == 'C' || h.type == 'E') && whole_here &&
		    b->len - start >= PGWIRE_HEADER + (size_t)h.body_len)
			sessrec_server_message(env, s, b->data + start, PGWIRE_HEADER + (size_t)h.body_len);
		if (found) {
			s->last_server_type = h.type;
			if (h.type == 'Z' && h.body_len == 1)
				s->want_status = true;
			else if (pgwire_scan_at_boundary(&s->sscan))
				pos += inject_due(s, pos);
		}
	}
	s->s_scan = pos;
	/* while a denial may come back, or rows may be masked, a header is not sent
	 * before it is known */
	b->ready = hold != SIZE_MAX ? hold : pos - s->sscan.have; /* a ParameterStatus header too */
	return FAULT_NONE;

fault:
	/* The message at start ends the session. Everything before it has been read
	 * (rewritten, masked) and may go, up to its start: ready may still be inside
	 * a message relayed as it came in an earlier read, and the client's FATAL must
	 * follow a whole message, never be read as the rest of that one. */
	if (start != SIZE_MAX && start >= b->off && start <= b->len) {
		b->ready = b->len = start;
		s->sscan.have = s->sscan.remaining = 0;
		s->want_status = false;
		s->last_server_type = 0; /* the one that ended it does not go out */
	} else {
		s->u2c_torn = true; /* not known where a message ends: no words follow */
	}
	s->s_scan = b->len;
	return f;
}
