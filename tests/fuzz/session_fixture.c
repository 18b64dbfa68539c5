/*
 * The session harnesses' fixture (session_fixture.h): the daemon's own session code
 * (session.c, relay.c, client_side.c, server_side.c, approval.c, sessrec.c, ...)
 * linked whole, the parent replaced by worker_stub.c, the two peers played here.
 */
#include "session_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "client_side.h"
#include "log.h"
#include "mask.h"
#include "policy.h"
#include "record.h"
#include "server_side.h"
#include "session_int.h"
#include "sessrec.h"

static const char rules_text[] =
	"{ \"rules\": [\n"
	" { \"name\": \"tables\", \"match\": { \"cgroup\": \"/ci/tables\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"   \"statements\": { \"allow\": [\"read\", \"write\", \"transaction\", \"session\"], \"approve\": [\"ddl\"],\n"
	"     \"approval_timeout\": 60, \"tables\": { \"allow\": [\"public.*\"], \"deny\": [\"public.secrets\", \"auth.*\"] } },\n"
	"   \"mask\": [ { \"column\": \"users.email\", \"strategy\": \"email\" }, { \"column_name\": \"*ssn*\", \"strategy\": \"null\" } ],\n"
	"   \"record\": { \"results\": true } },\n"
	" { \"name\": \"approver\", \"match\": { \"cgroup\": \"/ci/approver\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"   \"statements\": { \"allow\": [\"read\", \"transaction\", \"session\"], \"approve\": [\"write\"], \"approval_timeout\": 60 },\n"
	"   \"mask\": [ { \"column\": \"public.users.card\", \"strategy\": \"hash\" }, { \"column_name\": \"*email*\", \"strategy\": \"redact\" } ] },\n"
	" { \"name\": \"reader\", \"match\": { \"cgroup\": \"/ci/reader\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"   \"statements\": { \"allow\": [\"read\", \"transaction\", \"session\"] } },\n"
	" { \"name\": \"masks\", \"match\": { \"cgroup\": \"/ci/masks\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"main\",\n"
	"   \"mask\": [ { \"column\": \"users.email\", \"strategy\": \"email\" }, { \"column\": \"users.phone\", \"strategy\": \"partial\", \"keep\": 4 },\n"
	"              { \"column\": \"users.ssn\", \"strategy\": \"null\" } ] } ] }";

#define FX_REL 16384u   /* the OID of "users" in the canned catalog */
#define FX_MAX_STEPS 100000

/* A byte stream out of pgtether, cut into whole messages (the rest kept). */
struct stream {
	uint8_t *buf;
	size_t len, cap;
	bool closed;        /* pgtether closed its end */
};

/* Bytes for pgtether not yet taken by its socket. */
struct outbox {
	uint8_t *buf;
	size_t len, cap;
};

static struct {
	struct config cfg;
	struct session_env env;
	struct session *s;
	unsigned flags;
	int cpeer, upeer;           /* the client's and the server's sockets */
	struct stream down, up;     /* pgtether → client, pgtether → server */
	struct outbox to_c, to_u;   /* client → pgtether, server → pgtether */
	int probe_fd;               /* the lowest free fd before the input */
	int rec_fd;                 /* the recording (a memfd), or -1 */
	uint64_t next_id;
	/* the canned server */
	char tx;                    /* 'I', 'T', 'E' */
	bool skipping;              /* after an error, to Sync */
	bool ours;                  /* in pgtether's search_path lookup */
	bool eof_sent;
	uint8_t down_last;          /* the type of the last whole message the client got */
	bool trace;                 /* FX_TRACE set: every message on stderr */
	/* the client wrote the sentinel tag itself (a worker's is random: this one is
	 * not), and errors quote its text */
	bool client_tag;
	char tail[64];              /* the client's last bytes, for a tag across chunks */
	size_t tail_len;
} F;

static void grow(uint8_t **buf, size_t *cap, size_t want)
{
	if (want <= *cap)
		return;
	size_t n = *cap ? *cap : 4096;

	while (n < want)
		n *= 2;
	*buf = realloc(*buf, n);
	if (!*buf)
		abort();
	*cap = n;
}

static void put(struct outbox *o, const void *p, size_t n)
{
	grow(&o->buf, &o->cap, o->len + n);
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* One message of type t with body b[0..n) for pgtether. */
static void msg(struct outbox *o, uint8_t t, const void *b, size_t n)
{
	uint8_t h[5] = { t };

	pgwire_put32(h + 1, (uint32_t)(n + 4));
	put(o, h, 5);
	put(o, b, n);
}

/* ---- the canned PostgreSQL -------------------------------------------------------- */

static void ready(void)
{
	uint8_t z = (uint8_t)F.tx;

	msg(&F.to_u, 'Z', &z, 1);
}

static void complete(const char *tag)
{
	msg(&F.to_u, 'C', tag, strlen(tag) + 1);
}

/* An ErrorResponse or NoticeResponse: fields S, V, C, M, and D when detail. */
static void error(uint8_t type, const char *code, const char *text, const char *detail)
{
	uint8_t b[1024];
	const char *sev = type == 'E' ? "ERROR" : "NOTICE";
	int n = snprintf((char *)b, sizeof(b), "S%s%cV%s%cC%s%cM%s%c", sev, 0, sev, 0, code, 0, text, 0);

	if (n < 0 || (size_t)n >= sizeof(b) - 200)
		n = 0;
	if (detail)
		n += snprintf((char *)b + n, sizeof(b) - (size_t)n, "D%s%c", detail, 0);
	b[n++] = 0;
	msg(&F.to_u, type, b, (size_t)n);
}

/* The canned table public.users (OID FX_REL): its columns in attnum order, the one
 * row it has. A masking session never shows the row's value of a masked column. */
static const struct { const char *name; uint32_t type; const char *value; } users[] = {
	{ "id", 23, "1" }, { "email", 25, "alice@example.com" }, { "ssn", 25, "123-45-6789" },
	{ "card", 25, "4111111111111111" }, { "phone", 25, "+1 555 0100" },
};
#define FX_COLS (sizeof(users) / sizeof(users[0]))

/* Whether rule r masks column i of users (by "column", or by a "column_name" glob). */
static bool masked_column(const struct policy_rule *r, size_t i)
{
	for (size_t m = 0; r && m < r->n_masks; m++) {
		const struct policy_mask *k = &r->masks[m];

		if (k->column ? !strcmp(k->table, "users") && !strcmp(k->name, users[i].name)
			      : !fnmatch(k->column_name, users[i].name, 0))
			return true;
	}
	return false;
}

/* RowDescription of users as "SELECT * FROM users" returns it. */
static void describe_users(void)
{
	uint8_t b[512];
	size_t n = 2;

	b[0] = 0;
	b[1] = FX_COLS;
	for (size_t i = 0; i < FX_COLS; i++) {
		size_t l = strlen(users[i].name) + 1;

		memcpy(b + n, users[i].name, l);
		n += l;
		pgwire_put32(b + n, FX_REL);
		b[n + 4] = 0;
		b[n + 5] = (uint8_t)(i + 1);
		pgwire_put32(b + n + 6, users[i].type);
		b[n + 10] = 0xff; /* typlen -1 */
		b[n + 11] = 0xff;
		pgwire_put32(b + n + 12, 0xffffffffu);
		b[n + 16] = 0;
		b[n + 17] = 0;
		n += 18;
	}
	msg(&F.to_u, 'T', b, n);
}

/* A DataRow of text values (NULL: SQL NULL). */
static void row(const char *const *v, size_t k)
{
	uint8_t b[2048];
	size_t n = 2;

	b[0] = (uint8_t)(k >> 8);
	b[1] = (uint8_t)k;
	for (size_t i = 0; i < k; i++) {
		size_t l = v[i] ? strlen(v[i]) : 0;

		pgwire_put32(b + n, v[i] ? (uint32_t)l : 0xffffffffu);
		memcpy(b + n + 4, v[i] ? v[i] : "", l);
		n += 4 + l;
	}
	msg(&F.to_u, 'D', b, n);
}

static void user_row(void)
{
	const char *v[FX_COLS];

	for (size_t i = 0; i < FX_COLS; i++)
		v[i] = users[i].value;
	row(v, FX_COLS);
}

/* The answer to maskset_query: every "column" mask of the rule is a column of users. */
static void mask_answer(void)
{
	const struct policy_rule *r = session_rule(&F.env, F.s);
	char j[128];

	for (size_t i = 0; r && i < r->n_masks; i++) {
		const char *v[1] = { j };

		for (size_t c = 0; c < FX_COLS && r->masks[i].column; c++) {
			if (strcmp(r->masks[i].table, "users") || strcmp(r->masks[i].name, users[c].name))
				continue;
			snprintf(j, sizeof(j), "{\"k\": \"c\", \"rel\": %u, \"att\": %zu, \"m\": %zu}", FX_REL, c + 1, i);
			row(v, 1);
		}
	}
	complete("SELECT 1");
	ready();
}

/* The answer to searchpath_request's Execute: public first, the user app. */
static void path_answer(void)
{
	static const char *const rows[][3] = {
		{ "p", "public", NULL }, { "u", "app", NULL }, { "c", "public", NULL },
		{ "r", "public", "users" }, { "r", "public", "orders" }, { "x", "auth", "tokens" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		row(rows[i], 3);
	complete("SELECT 6");
}

static bool has(const char *sql, const char *word)
{
	return strcasestr(sql, word) != NULL;
}

/* What a statement does to the canned server's transaction, and its answer. */
static void statement(const char *sql, bool simple)
{
	if (!strncmp(sql, F.env.sentinel_tag, strlen(F.env.sentinel_tag))) {
		char m[160];

		snprintf(m, sizeof(m), "syntax error at or near \"%.100s\"", sql);
		error('E', "42601", m, NULL);
		F.tx = F.tx == 'T' ? 'E' : F.tx;
		F.skipping = !simple;
		return;
	}
	if (has(sql, "fail")) {
		error('E', "23505", "duplicate key value violates unique constraint \"users_email_key\"",
		      "Key (email)=(alice@example.com) already exists.");
		F.tx = F.tx == 'T' ? 'E' : F.tx;
		F.skipping = !simple;
		return;
	}
	if (has(sql, "raise"))
		error('N', "01000", "alice@example.com", "Failing row contains (1, alice@example.com).");
	if (has(sql, "set ")) {
		static const uint8_t ps[] = "standard_conforming_strings\0on";

		msg(&F.to_u, 'S', ps, sizeof(ps));
	}
	if (has(sql, "read_write")) {
		static const uint8_t ps[] = "default_transaction_read_only\0off";

		msg(&F.to_u, 'S', ps, sizeof(ps));
	}
	if (has(sql, "begin"))
		F.tx = 'T';
	if (has(sql, "commit") || has(sql, "rollback"))
		F.tx = 'I';
	if (simple) {
		if (has(sql, "create") || has(sql, "alter") || has(sql, "drop")) {
			complete(has(sql, "drop") ? "DROP TABLE" : "CREATE TABLE");
		} else {
			describe_users();
			user_row();
			complete("SELECT 1");
		}
	}
}

/* The canned server's answer to one whole message m[0..mlen) from pgtether. */
static void answer(const uint8_t *m, size_t mlen)
{
	const char *body = (const char *)m + 5;
	size_t blen = mlen - 5;
	bool canned = F.flags & FX_CANNED, lookups = canned || (F.flags & FX_LOOKUPS);
	/* messages of pgtether's search_path lookup name its statement or portal */
	bool named = blen >= sizeof(SEARCHPATH_STATEMENT) && memmem(body, blen, SEARCHPATH_STATEMENT, sizeof(SEARCHPATH_STATEMENT));
	bool masks = m[0] == 'Q' && blen > 30 && !memcmp(body, "/* pgtether: masked columns */", 30);

	if (named && lookups)
		F.ours = true;
	if (!canned && !F.ours && !(lookups && masks))
		return; /* the harness's own bytes answer it */
	if (m[0] == 'S') {
		F.skipping = false;
		F.ours = false;
		if (F.tx == 'E' && !canned)
			F.tx = 'T';
		ready();
		return;
	}
	if (F.skipping)
		return;
	if (blen == 0 || body[blen - 1] != '\0') {
		if (m[0] != 'X' && m[0] != 'H')
			error('E', "08P01", "invalid message format", NULL);
		if (m[0] == 'X')
			shutdown(F.upeer, SHUT_WR), F.eof_sent = true;
		return;
	}
	switch (m[0]) {
	case 'Q':
		if (blen > 30 && !memcmp(body, "/* pgtether: masked columns */", 30)) {
			mask_answer();
			return;
		}
		statement(body, true);
		ready();
		break;
	case 'P':
		statement(body + strnlen(body, blen) + 1 < body + blen ? body + strnlen(body, blen) + 1 : "", false);
		if (!F.skipping)
			msg(&F.to_u, '1', "", 0);
		break;
	case 'B':
		msg(&F.to_u, '2', "", 0);
		break;
	case 'D':
		if (body[0] == 'S')
			msg(&F.to_u, 't', "\0\0", 2);
		describe_users();
		break;
	case 'E':
		if (named) {
			path_answer();
		} else {
			user_row();
			complete("SELECT 1");
		}
		break;
	case 'C':
		msg(&F.to_u, '3', "", 0);
		break;
	case 'H':
		break;
	default:
		error('E', "08P01", "unexpected message type", NULL);
		break;
	}
}

/* ---- the peers ---------------------------------------------------------------- */

/* An ErrorResponse or NoticeResponse m[0..mlen) to the client. */
static void server_words(const uint8_t *m, size_t mlen)
{
	const struct policy_rule *r = F.s && !F.s->dead ? session_rule(&F.env, F.s) : NULL;

	/* a masking session never passes a server's DETAIL (withhold_detail), also
	 * not one said while pgtether's own catalog query was out */
	if (r && r->n_masks)
		fuzz_check(!pgwire_notice_field(m, mlen, 'D'));
	/* the canned server's error for a statement substituted for a denied one
	 * becomes the denial: the substitute's tag never reaches the client */
	if ((F.flags & FX_CANNED) && !F.client_tag)
		fuzz_check(!memmem(m + 5, mlen - 5, F.env.sentinel_tag, strlen(F.env.sentinel_tag)));
}

/* Whole messages of a stream from pgtether: well framed, and each one checked. */
static void frames(struct stream *st, bool upstream)
{
	size_t p = 0;

	while (st->len - p >= 5) {
		uint8_t t = st->buf[p];
		uint32_t l = pgwire_get32(st->buf + p + 1);

		fuzz_check(l >= 4 && l <= F.cfg.max_message_bytes);
		if (upstream)
			fuzz_check(t != 'F'); /* FunctionCall never reaches the server */
		if (st->len - p < 1 + (size_t)l)
			break;
		if (F.trace) {
			fprintf(stderr, "%s %c %u ", upstream ? "->server" : "->client", t >= 0x20 && t < 0x7f ? t : '?', l);
			for (size_t i = 0; i < l - 4 && i < 120; i++)
				fputc(st->buf[p + 5 + i] >= 0x20 && st->buf[p + 5 + i] < 0x7f ? st->buf[p + 5 + i] : '.', stderr);
			fputc('\n', stderr);
		}
		if (!upstream)
			F.down_last = t;
		if (upstream) {
			answer(st->buf + p, 1 + (size_t)l);
		} else if (t == 'S' && l >= 4 + 16 && !memcmp(st->buf + p + 5, "client_encoding", 16)) {
			/* pgtether reads statements as UTF8: the client never hears of another
			 * encoding, the session ends first (session_param_status) */
			fuzz_check(l == 4 + 16 + 5 && !memcmp(st->buf + p + 5 + 16, "UTF8", 5));
		} else if (t == 'S' && l >= 4 + 30 && !memcmp(st->buf + p + 5, "default_transaction_read_only", 30) &&
			   F.s && F.s->read_only) {
			/* a read-only session never goes on read-write */
			fuzz_check(l == 4 + 30 + 3 && !memcmp(st->buf + p + 5 + 30, "on", 3));
		} else if (t == 'E' || t == 'N') {
			server_words(st->buf + p, 1 + (size_t)l);
		} else if (t == 'D' && (F.flags & FX_CANNED) && F.s) {
			/* the canned server's rows are all of users: no masked value shows */
			const struct policy_rule *r = &F.cfg.policy.rules[F.flags & FX_RULE];

			for (size_t i = 0; i < FX_COLS; i++)
				if (masked_column(r, i))
					fuzz_check(!memmem(st->buf + p + 5, l - 4, users[i].value, strlen(users[i].value)));
		}
		p += 1 + (size_t)l;
	}
	if (p) {
		memmove(st->buf, st->buf + p, st->len - p);
		st->len -= p;
	}
}

/* Reads what pgtether sent on fd; true when anything came. */
static bool drain(int fd, struct stream *st, bool upstream)
{
	bool got = false;

	while (!st->closed) {
		grow(&st->buf, &st->cap, st->len + 65536);
		ssize_t n = read(fd, st->buf + st->len, 65536);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			st->closed = true;
			got = true;
			break;
		}
		if (n < 0)
			break;
		st->len += (size_t)n;
		got = true;
	}
	if (got)
		frames(st, upstream);
	return got;
}

/* Writes what waits for pgtether on fd as far as its socket takes it. */
static bool push(int fd, struct outbox *o)
{
	size_t done = 0;

	while (done < o->len) {
		ssize_t n = send(fd, o->buf + done, o->len - done, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (!done)
		return false;
	memmove(o->buf, o->buf + done, o->len - done);
	o->len -= done;
	return true;
}

/* The books of the session stay within what session_int.h promises. */
static void check_books(void)
{
	struct session *s = F.s;
	unsigned f = 0;

	if (s->dead)
		return;
	fuzz_check(s->c2u.off <= s->c2u.ready && s->c2u.ready <= s->c2u.len && s->c2u.len <= s->c2u.cap);
	fuzz_check(s->u2c.off <= s->u2c.ready && s->u2c.ready <= s->u2c.len && s->u2c.len <= s->u2c.cap);
	fuzz_check(s->c_scan <= s->c2u.len && s->s_scan <= s->u2c.len);
	fuzz_check(s->pending_count <= SESSION_MAX_PENDING);
	for (size_t i = 0; i < s->pending_count; i++)
		f += s->pending[(s->pending_head + i) % SESSION_MAX_PENDING] == 'F';
	fuzz_check(f == s->refusals_owed && f <= 4);
	fuzz_check(s->sentinels_out <= SESSION_MAX_DENIALS);
	fuzz_check(s->desc_count <= s->desc_cap && s->desc_cap <= SESSION_MAX_DESCRIBES);
	fuzz_check(s->acct.held == F.env.mem.used && s->acct.held <= F.cfg.memory_budget);
	fuzz_check(s->notice_len <= sizeof(s->notice));
	fuzz_check(!s->held_id || s->held_sql);
	/* a setting session_param_status took that ends the session ended it: a
	 * fault returned by server_side_scan is not found again (an ended session's
	 * client may still drain: its upstream is closed then) */
	fuzz_check(s->draining ? s->upstream.fd < 0 : !strcmp(s->client_encoding, "UTF8") && !s->read_write_seen);
}

/* The worker's loop (worker.c) until nothing moves: a held statement is decided by
 * an approver once the session waits for nothing else. */
static void run(void)
{
	for (int step = 0;; step++) {
		struct epoll_event ev[8];
		bool moved;
		int n;

		fuzz_check(step < FX_MAX_STEPS); /* the relay must come to rest */
		moved = push(F.cpeer, &F.to_c);
		moved |= push(F.upeer, &F.to_u);
		n = epoll_wait(F.env.epfd, ev, 8, 0);
		for (int i = 0; i < n; i++) {
			struct ev_source *src = ev[i].data.ptr;

			fuzz_check(src->kind == EV_SESSION);
			session_event(&F.env, (struct session_end *)src, ev[i].events);
			moved = true;
		}
		check_books();
		moved |= drain(F.cpeer, &F.down, false);
		moved |= drain(F.upeer, &F.up, true);
		if (moved)
			continue;
		if (!F.s->dead && F.s->held_id && !F.s->held_decision) {
			struct session_approver who = { 1000, 1000, false };
			char err[160];

			/* approved, denied, timed out (session_tick), in turn by request */
			unsigned d = (unsigned)((F.s->held_id + !!(F.flags & FX_DENY)) % 3);

			fuzz_check(session_decide(&F.env, F.s->held_id, d == 0, d == 2 ? NULL : "fuzz", d == 2 ? NULL : "approver",
						  d == 2 ? NULL : &who, err, sizeof(err)) == 0);
			continue;
		}
		break;
	}
}

/* ---- the fixture ---------------------------------------------------------------- */

void fx_init(void)
{
	char err[POLICY_ERR_LEN];
	FILE *null = fopen("/dev/null", "w");

	if (!null)
		abort();
	F.trace = getenv("FX_TRACE") != NULL;
	log_setup(LOG_LEVEL_DEBUG, F.trace ? stderr : null); /* every line formatted, none kept */
	if (policy_parse(&F.cfg.policy, "fuzz.json", rules_text, strlen(rules_text), err) < 0 || F.cfg.policy.n != 4) {
		fprintf(stderr, "session_fixture: %s\n", err);
		abort();
	}
	memset(F.cfg.mask_key, 0x5a, sizeof(F.cfg.mask_key));
	F.cfg.have_mask_key = true;
	if (!(F.cfg.mask_hmac = mask_hmac_new(F.cfg.mask_key)))
		abort();
	/* the upstream the rules name, as a reload looks it up (relay.c) */
	static struct config_upstream main_upstream = { .name = "main", .host = "127.0.0.1", .role = "app" };

	F.cfg.upstreams = &main_upstream;
	F.cfg.n_upstreams = 1;
	F.cfg.max_message_bytes = 65536;   /* config.c's least */
	F.cfg.max_statement_bytes = 4096;  /* small: the long-statement paths are reached */
	F.cfg.mask_refresh = 60;
	F.cfg.memory_budget = 1u << 20;    /* config.c's least */
	F.cfg.login_timeout = 10;
	F.env.cfg = &F.cfg;
	F.env.worker = true;
	F.env.gen = 1;
	F.env.mask_epoch = 1;
	snprintf(F.env.sentinel_tag, sizeof(F.env.sentinel_tag), "pgtether_denied_0123456789abcdef_");
	/* statements classified through the cache, as a worker's are (worker.c);
	 * fx_end empties it, so no input depends on the ones before it */
	if ((F.env.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || !(F.env.sqlcache = calloc(1, sizeof(*F.env.sqlcache))))
		abort();
}

void fx_begin(unsigned flags)
{
	const struct policy_rule *r = &F.cfg.policy.rules[flags & FX_RULE];
	int cp[2], up[2];
	struct session *s;

	/* the lowest free fd now is the lowest free one after the session too */
	if ((F.probe_fd = open("/dev/null", O_RDONLY)) < 0)
		abort();
	close(F.probe_fd);
	F.flags = flags;
	F.rec_fd = -1;
	F.client_tag = false;
	F.tail_len = 0;
	F.tx = 'I';
	F.skipping = F.ours = F.eof_sent = false;
	F.down_last = 0;
	F.down.len = F.up.len = F.to_c.len = F.to_u.len = 0;
	F.down.closed = F.up.closed = false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, cp) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, up) < 0)
		abort();
	F.cpeer = cp[1];
	F.upeer = up[1];
	/* as session_adopt, session_verdict and upstream.c leave it after login */
	if (!(F.s = s = session_new(&F.env, cp[0])))
		abort();
	s->id = ++F.next_id;
	s->upstream.fd = up[0];
	fuzz_check(sbuf_watch(F.env.epfd, &s->client, EPOLLIN) == 0);
	fuzz_check(sbuf_watch(F.env.epfd, &s->upstream, EPOLLIN) == 0);
	s->origin.tgid = s->origin.tid = 4242;
	s->origin.uid = s->origin.gid = 1000;
	memcpy(s->origin.comm, "psql", 4);
	snprintf(s->facts.exe, sizeof(s->facts.exe), "/usr/bin/psql");
	snprintf(s->facts.cgroup, sizeof(s->facts.cgroup), "/ci/%s", r->name); /* its rule's alone */
	snprintf(s->rule, sizeof(s->rule), "%s", r->name);
	s->rule_gen = F.env.gen;
	s->rule_idx = flags & FX_RULE;
	s->token_source = "none";
	snprintf(s->upstream_name, sizeof(s->upstream_name), "main");
	snprintf(s->role, sizeof(s->role), "app");
	snprintf(s->database, sizeof(s->database), "app");
	snprintf(s->client_user, sizeof(s->client_user), "%s", flags & FX_ROLE_HINT ? "alice" : "app");
	s->role_hint = strcmp(s->client_user, s->role) != 0;
	s->read_only = policy_read_only(r);
	snprintf(s->scs, sizeof(s->scs), "on");
	snprintf(s->client_encoding, sizeof(s->client_encoding), "UTF8");
	s->n_up_addrs = 1;
	s->authenticated = true;
	s->key_pid = 77;
	s->key_secret = 78;
	s->up_pid = 99;
	s->up_secret = 100;
	s->have_up_key = true;
	if (flags & FX_RECORDED) {
		/* in memory, kept open here too: fx_end verifies its chain and seal */
		char why[RECORD_ERR_LEN];
		int fd = memfd_create("fuzz-recording", MFD_CLOEXEC);

		if (fd < 0 || (F.rec_fd = dup(fd)) < 0)
			abort();
		fuzz_check(sessrec_open(&F.env, s, fd, "fuzz", "memfd:fuzz-recording", why, sizeof(why)) == 0);
	}
	{
		/* what the client got at login (startup.c, upstream.c): AuthenticationOk,
		 * the server's settings, pgtether's key, and the ReadyForQuery unless the
		 * masks are looked up first */
		uint8_t m[128];

		sbuf_put(&s->u2c, m, pgwire_build_auth_ok(m, sizeof(m)));
		sbuf_put(&s->u2c, m, pgwire_build_parameter_status(m, sizeof(m), "client_encoding", "UTF8"));
		sbuf_put(&s->u2c, m, pgwire_build_parameter_status(m, sizeof(m), "standard_conforming_strings", "on"));
		sbuf_put(&s->u2c, m, pgwire_build_backend_key_data(m, sizeof(m), s->key_pid, s->key_secret));
		if (!session_masking_rule(&F.env, s))
			sbuf_put(&s->u2c, m, pgwire_build_ready_for_query(m, sizeof(m), 'I'));
	}
	s->state = SESSION_LOGIN;
	session_start_relay(&F.env, s); /* a masking rule's catalog query goes first */
	run();
}

void fx_client(const uint8_t *data, size_t len)
{
	size_t tag = strlen(F.env.sentinel_tag), k = len < tag ? len : tag;
	char edge[2 * sizeof(F.tail)];

	/* the tag in this chunk, or across its start */
	memcpy(edge, F.tail, F.tail_len);
	memcpy(edge + F.tail_len, data, k);
	if (memmem(data, len, F.env.sentinel_tag, tag) || memmem(edge, F.tail_len + k, F.env.sentinel_tag, tag))
		F.client_tag = true;
	if (len >= tag - 1) {
		/* the last tag - 1 bytes of the stream */
		memcpy(F.tail, data + len - (tag - 1), tag - 1);
		F.tail_len = tag - 1;
	} else {
		size_t keep = F.tail_len + len > tag - 1 ? tag - 1 - len : F.tail_len;

		memmove(F.tail, F.tail + F.tail_len - keep, keep);
		memcpy(F.tail + keep, data, len);
		F.tail_len = keep + len;
	}
	put(&F.to_c, data, len);
	run();
}

void fx_server(const uint8_t *data, size_t len)
{
	put(&F.to_u, data, len);
	run();
}

void fx_server_close(void)
{
	struct session *s = F.s;
	/* a relay the server's end ends owes the client the reason (end_relay): its
	 * own ErrorResponse (a server's FATAL comes before it closes), or pgtether's
	 * FATAL; not after the client's Terminate, nor once the session is ending */
	bool owed = !s->dead && s->state == SESSION_RELAYING && !s->draining && !s->c_terminated && !s->c2u.eof;

	shutdown(F.upeer, SHUT_WR);
	F.eof_sent = true;
	run();
	/* ... unless the client is left inside a message (a row relayed as it came):
	 * nothing can follow that */
	if (owed && s->dead && F.down.len == 0)
		fuzz_check(F.down_last == 'E');
}

void fx_reload(void)
{
	F.env.gen++;
	session_policy_reloaded(&F.env);
	run();
}

void fx_end(void)
{
	int fd;

	if (!F.s->dead) {
		/* the client hangs up: what it left unfinished goes too */
		shutdown(F.cpeer, SHUT_WR);
		run();
	}
	if (!F.s->dead)
		session_close(&F.env, F.s, "fuzz: end of input");
	session_reap(&F.env);
	F.s = NULL;
	sqlclass_cache_clear(F.env.sqlcache); /* each input from an empty cache: a finding replays */
	close(F.cpeer);
	close(F.upeer);
	if (F.rec_fd >= 0) {
		/* sealed, and every record in its chain (record.h) */
		struct record_check rc = { 0 };
		char path[64], err[RECORD_ERR_LEN];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", F.rec_fd);
		int r = record_verify(path, &rc, err);

		if (r != 0 || !rc.sealed) {
			char b[4096];
			ssize_t n = pread(F.rec_fd, b, sizeof(b), 0);

			fprintf(stderr, "session_fixture: recording: %s\n%.*s\n", r ? err : "not sealed", (int)(n > 0 ? n : 0), b);
			fuzz_check(!"the recording verifies");
		}
		if (F.trace)
			fprintf(stderr, "recording: %llu records, sealed\n", (unsigned long long)rc.records);
		json_decref(rc.header);
		close(F.rec_fd);
	}
	fuzz_check(F.env.n_live == 0 && !F.env.head && !F.env.dead);
	fuzz_check(F.env.mem.used == 0); /* every grown buffer given back */
	fd = open("/dev/null", O_RDONLY);
	fuzz_check(fd == F.probe_fd); /* no fd left open */
	close(fd);
}
