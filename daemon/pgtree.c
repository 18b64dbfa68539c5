/*
 * libpg_query's protobuf parse tree as its JSON tree would read (see pgtree.h).
 *
 * The packed tree is unpacked by the protobuf-c runtime and descriptors inside
 * libpg_query.a, into an arena that also holds the tree built from it: one pass
 * over the messages by their descriptors, so no node type is special-cased and
 * none can be skipped, and one free at the end. The JSON keys come from
 * pg_query.proto's json_name annotations ($(BUILD)/pgtree_names.h, generated from
 * the installed file by scripts/pgtree-names.awk), looked up once per descriptor.
 */
#include "pgtree.h"

#include <errno.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the arena ---------------------------------------------------------------- */

#define PGTREE_CHUNK (32u << 10)

struct pgtree_chunk {
	struct pgtree_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct pgtree_doc {
	struct pgtree_chunk *chunks;
	struct pgtree root;
	bool oom;
};

static void *pgtree_alloc(void *arg, size_t size)
{
	struct pgtree_doc *d = arg;
	struct pgtree_chunk *c = d->chunks;
	void *p;

	size = (size + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < size) {
		size_t cap = size > PGTREE_CHUNK ? size : PGTREE_CHUNK;

		if (!(c = malloc(sizeof(*c) + cap))) {
			d->oom = true;
			return NULL;
		}
		c->used = 0;
		c->cap = cap;
		c->next = d->chunks;
		d->chunks = c;
	}
	p = c->data + c->used;
	c->used += size;
	return p;
}

static void pgtree_nofree(void *arg, void *p)
{
	(void)arg;
	(void)p; /* everything goes with the arena */
}

void pgtree_doc_free(struct pgtree_doc *doc)
{
	struct pgtree_chunk *c, *next;

	if (!doc)
		return;
	for (c = doc->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(doc);
}

struct pgtree *pgtree_doc_root(struct pgtree_doc *doc)
{
	return doc ? &doc->root : NULL;
}

/* ---- JSON keys ------------------------------------------------------------------ */

static const struct pgtree_name {
	const char *msg, *field, *key;
} pgtree_names[] = {
#include "pgtree_names.h"
};

/* Per descriptor, the key of each of its fields (by index in ->fields). Every
 * descriptor reachable from ParseResult is here after pgtree_keys_init. */
#define PGTREE_DESC_SLOTS 1024

static struct pgtree_desc_keys {
	const ProtobufCMessageDescriptor *desc;
	const char **keys;
} pgtree_descs[PGTREE_DESC_SLOTS];
static pthread_once_t pgtree_once = PTHREAD_ONCE_INIT;
static bool pgtree_init_failed;

static size_t pgtree_slot(const ProtobufCMessageDescriptor *desc)
{
	return ((uintptr_t)desc >> 4) * 2654435761u % PGTREE_DESC_SLOTS;
}

static const char **pgtree_keys(const ProtobufCMessageDescriptor *desc)
{
	for (size_t s = pgtree_slot(desc), k = 0; k < PGTREE_DESC_SLOTS; k++, s = (s + 1) % PGTREE_DESC_SLOTS) {
		if (pgtree_descs[s].desc == desc)
			return pgtree_descs[s].keys;
		if (!pgtree_descs[s].desc)
			return NULL;
	}
	return NULL;
}

static int pgtree_name_cmp(const void *key, const void *elem)
{
	const struct pgtree_name *a = key, *b = elem;
	int c = strcmp(a->msg, b->msg);

	return c ? c : strcmp(a->field, b->field);
}

static const char *pgtree_key_of(const char *msg, const char *field)
{
	struct pgtree_name k = { msg, field, NULL };
	const struct pgtree_name *n = bsearch(&k, pgtree_names, sizeof(pgtree_names) / sizeof(pgtree_names[0]),
					      sizeof(pgtree_names[0]), pgtree_name_cmp);

	return n ? n->key : field; /* no json_name: the JSON uses the field's own name */
}

static void pgtree_add_desc(const ProtobufCMessageDescriptor *desc)
{
	size_t s, k;
	const char **keys;

	if (pgtree_init_failed || pgtree_keys(desc))
		return;
	for (s = pgtree_slot(desc), k = 0; pgtree_descs[s].desc && k < PGTREE_DESC_SLOTS; k++)
		s = (s + 1) % PGTREE_DESC_SLOTS;
	if (pgtree_descs[s].desc || !(keys = calloc(desc->n_fields + 1, sizeof(*keys)))) {
		pgtree_init_failed = true;
		return;
	}
	for (unsigned i = 0; i < desc->n_fields; i++)
		keys[i] = pgtree_key_of(desc->short_name, desc->fields[i].name);
	pgtree_descs[s].desc = desc;
	pgtree_descs[s].keys = keys; /* kept for the process's life */
	for (unsigned i = 0; i < desc->n_fields; i++)
		if (desc->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
			pgtree_add_desc(desc->fields[i].descriptor);
}

static void pgtree_keys_init(void)
{
	pgtree_add_desc(&pg_query__parse_result__descriptor);
}

/* ---- building the tree ---------------------------------------------------------- */

/* jansson's strict UTF-8 (RFC 3629): no overlong forms, surrogates or values past
 * U+10FFFF. pg_query_parse's JSON carries string bytes as they are, and json_loads
 * refused the whole tree when one was not UTF-8. */
static bool pgtree_utf8(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s, n, v;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, v = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, v = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, v = c & 0x07;
		else
			return false;
		for (unsigned k = 1; k <= n; k++) {
			if ((s[k] & 0xc0) != 0x80)
				return false; /* also the NUL that ends the string */
			v = (v << 6) | (s[k] & 0x3f);
		}
		if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || (n == 2 && v < 0x800) || (n == 3 && v < 0x10000))
			return false;
		s += n + 1;
	}
	return true;
}

/* The nodes whose one field is their value, written even when empty; a Boolean's
 * false too, but only as a node of its own ({"Boolean": {"boolval": false}}): in an
 * A_Const it is {"boolval": {}}. wrapped: m is the message of a Node. */
static bool pgtree_value_node(const ProtobufCMessageDescriptor *desc, bool wrapped)
{
	return desc == &pg_query__string__descriptor || desc == &pg_query__float__descriptor ||
	       desc == &pg_query__bit_string__descriptor || (wrapped && desc == &pg_query__boolean__descriptor);
}

struct pgtree_build {
	struct pgtree_doc *doc;
	int err;
	const char *sql;                /* the text parsed */
	int stmt_start, stmt_len;       /* the RawStmt being built */
	PgQuery__ScanResult *scan;      /* sql's tokens, once needed */
};

/*
 * COPY's copy_file_name is a string constant, STDIN or STDOUT. The JSON tells them
 * apart (a NULL filename is not written, '' is "filename": ""), the protobuf form
 * cannot (both are ""), and the class does (a server file is copy_program). So for
 * an empty filename, the tokens of the statement decide: the one after its first
 * FROM or TO outside parentheses (COPY t (a) FROM ..., COPY (SELECT ...) TO ...),
 * past PROGRAM. Whether it names a file: 1, 0, or -errno.
 */
static int pgtree_copy_file(struct pgtree_build *b)
{
	int depth = 0, end = b->stmt_len ? b->stmt_start + b->stmt_len : INT32_MAX;
	size_t i;

	if (!b->scan) {
		PgQueryScanResult sr = pg_query_scan(b->sql);
		ProtobufCAllocator a = { pgtree_alloc, pgtree_nofree, b->doc };

		if (!sr.error)
			b->scan = pg_query__scan_result__unpack(&a, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
		pg_query_free_scan_result(sr);
		if (!b->scan)
			return b->doc->oom ? -ENOMEM : -EINVAL; /* it parsed: its tokens must scan */
	}
	for (i = 0; i < b->scan->n_tokens; i++) {
		const PgQuery__ScanToken *t = b->scan->tokens[i];

		if (t->start < b->stmt_start || t->start >= end)
			continue;
		if (t->token == PG_QUERY__TOKEN__ASCII_40)
			depth++;
		else if (t->token == PG_QUERY__TOKEN__ASCII_41)
			depth--;
		else if (depth == 0 && (t->token == PG_QUERY__TOKEN__FROM || t->token == PG_QUERY__TOKEN__TO))
			break;
	}
	if (++i < b->scan->n_tokens && b->scan->tokens[i]->token == PG_QUERY__TOKEN__PROGRAM)
		i++;
	if (i >= b->scan->n_tokens || b->scan->tokens[i]->start >= end)
		return -EINVAL;
	switch (b->scan->tokens[i]->token) {
	case PG_QUERY__TOKEN__SCONST:
	case PG_QUERY__TOKEN__USCONST:
		return 1;
	case PG_QUERY__TOKEN__STDIN:
	case PG_QUERY__TOKEN__STDOUT:
		return 0;
	default:
		return -EINVAL; /* not the grammar this was written for: nothing is guessed */
	}
}

/* keep_empty: the one empty string field that is there in the JSON (see pgtree_copy_file). */
static bool pgtree_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *keep_empty,
			   bool wrapped)
{
	const char *base = (const char *)m;
	const void *p = base + f->offset;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		/* the root's "stmts" is written even when empty (a text of comments) */
		return *(const size_t *)(base + f->quantifier_offset) > 0 ||
		       m->descriptor == &pg_query__parse_result__descriptor;
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p != NULL;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)p;

		return s && (*s || pgtree_value_node(m->descriptor, wrapped) || (keep_empty && !strcmp(f->name, keep_empty)));
	}
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)p != 0 || pgtree_value_node(m->descriptor, wrapped);
	case PROTOBUF_C_TYPE_INT32:
		/* libpg_query 15-4.0.0's JSON wrote an Integer node's value only when it
		 * was positive ({"Integer": {}} for -1 as for 0): lo_open(x, -131072), whose
		 * mode has the write bit, read as mode 0. Here a negative value is there. */
		return *(const int32_t *)p != 0;
	case PROTOBUF_C_TYPE_UINT32:
		return *(const uint32_t *)p != 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		return *(const uint64_t *)p != 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p != 0;
	case PROTOBUF_C_TYPE_ENUM:
		return true; /* libpg_query's JSON writes every enum */
	default:
		return true; /* a type pg_query.proto does not use: refused below */
	}
}

static void pgtree_object(struct pgtree_build *b, const ProtobufCMessage *m, struct pgtree *out, unsigned depth,
			  bool wrapped);

/* One value, at depth (the root object is 1, as jansson counts). */
static void pgtree_value(struct pgtree_build *b, const ProtobufCMessage *parent, const ProtobufCFieldDescriptor *f,
			 const void *p, struct pgtree *out, unsigned depth)
{
	if (depth > PGTREE_MAX_DEPTH) {
		b->err = -EINVAL;
		return;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		if (!*(const ProtobufCMessage *const *)p) {
			b->err = -EINVAL; /* a oneof's case without its message */
			return;
		}
		pgtree_object(b, *(const ProtobufCMessage *const *)p, out, depth,
			      parent->descriptor == &pg_query__node__descriptor);
		return;
	case PROTOBUF_C_TYPE_STRING:
		out->kind = PGTREE_STRING;
		out->u.s = *(const char *const *)p;
		if (!pgtree_utf8((const unsigned char *)out->u.s))
			b->err = -EINVAL;
		return;
	case PROTOBUF_C_TYPE_BOOL:
		out->kind = *(const protobuf_c_boolean *)p ? PGTREE_TRUE : PGTREE_FALSE;
		return;
	case PROTOBUF_C_TYPE_INT32:
		out->kind = PGTREE_INTEGER;
		out->u.i = *(const int32_t *)p;
		return;
	case PROTOBUF_C_TYPE_UINT32:
		out->kind = PGTREE_INTEGER;
		out->u.i = *(const uint32_t *)p;
		return;
	case PROTOBUF_C_TYPE_INT64:
		out->kind = PGTREE_INTEGER;
		out->u.i = *(const int64_t *)p;
		return;
	case PROTOBUF_C_TYPE_UINT64:
		/* json_loads refused an integer past LLONG_MAX */
		if (*(const uint64_t *)p > (uint64_t)INT64_MAX)
			b->err = -EINVAL;
		out->kind = PGTREE_INTEGER;
		out->u.i = (long long)*(const uint64_t *)p;
		return;
	case PROTOBUF_C_TYPE_DOUBLE:
		out->kind = PGTREE_REAL;
		out->u.d = *(const double *)p;
		return;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);

		/* 0 is pg_query.proto's *_UNDEFINED, which no C value maps to */
		if (!ev || ev->value == 0) {
			b->err = -EINVAL;
			return;
		}
		out->kind = PGTREE_STRING;
		out->u.s = ev->name;
		return;
	}
	default:
		b->err = -EINVAL;
		return;
	}
}

static size_t pgtree_elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	default:
		return 4;
	}
}

static void pgtree_object(struct pgtree_build *b, const ProtobufCMessage *m, struct pgtree *out, unsigned depth,
			  bool wrapped)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	const char **keys = pgtree_keys(desc);
	const char *keep_empty = NULL;
	unsigned n = 0, k = 0;

	out->kind = PGTREE_OBJECT;
	out->n = 0;
	out->u.members = NULL;
	if (!keys || m->n_unknown_fields) {
		b->err = -EINVAL; /* a message or field number this build does not know */
		return;
	}
	if (desc == &pg_query__raw_stmt__descriptor) {
		b->stmt_start = ((const PgQuery__RawStmt *)m)->stmt_location;
		b->stmt_len = ((const PgQuery__RawStmt *)m)->stmt_len;
	} else if (desc == &pg_query__copy_stmt__descriptor) {
		const PgQuery__CopyStmt *c = (const PgQuery__CopyStmt *)m;

		if (!c->filename || !c->filename[0]) {
			int r = pgtree_copy_file(b);

			if (r < 0) {
				b->err = r;
				return;
			}
			keep_empty = r ? "filename" : NULL;
		}
	}
	if (desc == &pg_query__node__descriptor) {
		/* a Node is one oneof of some 250 node types: straight to the one that is
		 * set, as the loop below would find it ({} when none is) */
		uint32_t c = ((const PgQuery__Node *)m)->node_case;
		const ProtobufCFieldDescriptor *f = c ? protobuf_c_message_descriptor_get_field(desc, c) : NULL;

		if (!c)
			return;
		if (!f || !(out->u.members = pgtree_alloc(b->doc, sizeof(*out->u.members)))) {
			b->err = f ? -ENOMEM : -EINVAL;
			return;
		}
		out->n = 1;
		out->u.members[0].key = keys[f - desc->fields];
		memset(&out->u.members[0].v, 0, sizeof(out->u.members[0].v));
		pgtree_value(b, m, f, (const char *)m + f->offset, &out->u.members[0].v, depth + 1);
		return;
	}
	for (unsigned i = 0; i < desc->n_fields; i++)
		n += pgtree_present(m, &desc->fields[i], keep_empty, wrapped);
	if (!n)
		return; /* {} */
	if (!(out->u.members = pgtree_alloc(b->doc, n * sizeof(*out->u.members)))) {
		b->err = -ENOMEM;
		return;
	}
	out->n = n;
	for (unsigned i = 0; i < desc->n_fields && !b->err; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		struct pgtree_member *mb;
		const char *base = (const char *)m;

		if (!pgtree_present(m, f, keep_empty, wrapped))
			continue;
		mb = &out->u.members[k++];
		mb->key = keys[i];
		memset(&mb->v, 0, sizeof(mb->v));
		if (f->label == PROTOBUF_C_LABEL_REPEATED && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
			size_t cnt = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(const char *const *)(base + f->offset);
			size_t es = pgtree_elem_size(f);

			if (depth + 1 > PGTREE_MAX_DEPTH || cnt > UINT32_MAX) {
				b->err = -EINVAL;
				return;
			}
			mb->v.kind = PGTREE_ARRAY;
			if (!(mb->v.u.items = pgtree_alloc(b->doc, cnt * sizeof(*mb->v.u.items)))) {
				b->err = -ENOMEM;
				return;
			}
			mb->v.n = (unsigned)cnt;
			for (size_t e = 0; e < cnt && !b->err; e++) {
				memset(&mb->v.u.items[e], 0, sizeof(mb->v.u.items[e]));
				pgtree_value(b, m, f, arr + e * es, &mb->v.u.items[e], depth + 2);
			}
		} else {
			pgtree_value(b, m, f, base + f->offset, &mb->v, depth + 1);
		}
	}
}

/* A varint of data[*pos..len), or false when it runs past len or over 10 bytes. */
static bool pgtree_varint(const uint8_t *data, size_t len, size_t *pos, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = data[(*pos)++];

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

int pgtree_protobuf_depth(const void *data, size_t len, size_t *ret_depth)
{
	/* the end of each message being read, and its descriptor: no recursion */
	static _Thread_local struct { size_t end; const ProtobufCMessageDescriptor *desc; } st[PGTREE_MAX_DEPTH + 1];
	const uint8_t *p = data;
	size_t pos = 0, n = 1, max = 1;

	st[0].end = len;
	st[0].desc = &pg_query__parse_result__descriptor;
	while (n) {
		uint64_t tag, v;
		const ProtobufCFieldDescriptor *f;

		if (pos == st[n - 1].end) {
			n--;
			continue;
		}
		if (!pgtree_varint(p, st[n - 1].end, &pos, &tag))
			return -EINVAL;
		switch (tag & 7) {
		case 0:
			if (!pgtree_varint(p, st[n - 1].end, &pos, &v))
				return -EINVAL;
			break;
		case 1:
		case 5:
			if (st[n - 1].end - pos < ((tag & 7) == 1 ? 8u : 4u))
				return -EINVAL;
			pos += (tag & 7) == 1 ? 8 : 4;
			break;
		case 2:
			if (!pgtree_varint(p, st[n - 1].end, &pos, &v) || v > st[n - 1].end - pos)
				return -EINVAL;
			f = tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(st[n - 1].desc, (unsigned)(tag >> 3)) : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (n == PGTREE_MAX_DEPTH + 1) {
					*ret_depth = n + 1; /* deeper than any tree that is read */
					return 0;
				}
				st[n].end = pos + v;
				st[n].desc = f->descriptor;
				if (++n > max)
					max = n;
			} else {
				pos += v;
			}
			break;
		default:
			return -EINVAL; /* groups: pg_query.proto has none */
		}
	}
	*ret_depth = max;
	return 0;
}

int pgtree_doc_from_protobuf(const void *data, size_t len, const char *sql, struct pgtree_doc **ret_doc)
{
	struct pgtree_doc *doc;
	ProtobufCAllocator a = { pgtree_alloc, pgtree_nofree, NULL };
	PgQuery__ParseResult *res;
	struct pgtree_build b = { NULL, 0, sql, 0, 0, NULL };

	pthread_once(&pgtree_once, pgtree_keys_init);
	if (pgtree_init_failed)
		return -ENOMEM;
	if (!(doc = calloc(1, sizeof(*doc))))
		return -ENOMEM;
	a.allocator_data = doc;
	b.doc = doc;
	res = pg_query__parse_result__unpack(&a, len, data);
	if (!res) {
		b.err = doc->oom ? -ENOMEM : -EINVAL;
	} else {
		pgtree_object(&b, &res->base, &doc->root, 1, false);
		if (doc->oom)
			b.err = -ENOMEM;
	}
	if (b.err) {
		pgtree_doc_free(doc);
		return b.err;
	}
	*ret_doc = doc;
	return 0;
}

/* ---- reading it ----------------------------------------------------------------- */

struct pgtree *pgtree_get(const struct pgtree *o, const char *key)
{
	if (!o || o->kind != PGTREE_OBJECT || !key)
		return NULL;
	for (unsigned i = 0; i < o->n; i++)
		if (o->u.members[i].key[0] == key[0] && !strcmp(o->u.members[i].key, key))
			return &o->u.members[i].v;
	return NULL;
}

size_t pgtree_size(const struct pgtree *a)
{
	return a && a->kind == PGTREE_ARRAY ? a->n : 0;
}

struct pgtree *pgtree_at(const struct pgtree *a, size_t i)
{
	return a && a->kind == PGTREE_ARRAY && i < a->n ? &a->u.items[i] : NULL;
}

size_t pgtree_members(const struct pgtree *o)
{
	return o && o->kind == PGTREE_OBJECT ? o->n : 0;
}

const char *pgtree_key_at(const struct pgtree *o, size_t i)
{
	return i < pgtree_members(o) ? o->u.members[i].key : NULL;
}

struct pgtree *pgtree_value_at(const struct pgtree *o, size_t i)
{
	return i < pgtree_members(o) ? &o->u.members[i].v : NULL;
}

const char *pgtree_str(const struct pgtree *v)
{
	return v && v->kind == PGTREE_STRING ? v->u.s : NULL;
}

long long pgtree_int(const struct pgtree *v)
{
	return v && v->kind == PGTREE_INTEGER ? v->u.i : 0;
}

bool pgtree_is_true(const struct pgtree *v)
{
	return v && v->kind == PGTREE_TRUE;
}

bool pgtree_is_object(const struct pgtree *v)
{
	return v && v->kind == PGTREE_OBJECT;
}

bool pgtree_is_array(const struct pgtree *v)
{
	return v && v->kind == PGTREE_ARRAY;
}

bool pgtree_is_string(const struct pgtree *v)
{
	return v && v->kind == PGTREE_STRING;
}

const char *pgtree_type(const struct pgtree *node)
{
	return pgtree_key_at(node, 0);
}

/* Recursion depth is that of the trees, at most PGTREE_MAX_DEPTH, as json_equal's. */
bool pgtree_equal(const struct pgtree *a, const struct pgtree *b)
{
	if (!a || !b)
		return false;
	if (a == b)
		return true;
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case PGTREE_OBJECT:
		if (a->n != b->n)
			return false;
		for (unsigned i = 0; i < a->n; i++)
			if (!pgtree_equal(&a->u.members[i].v, pgtree_get(b, a->u.members[i].key)))
				return false;
		return true;
	case PGTREE_ARRAY:
		if (a->n != b->n)
			return false;
		for (unsigned i = 0; i < a->n; i++)
			if (!pgtree_equal(&a->u.items[i], &b->u.items[i]))
				return false;
		return true;
	case PGTREE_STRING:
		return !strcmp(a->u.s, b->u.s);
	case PGTREE_INTEGER:
		return a->u.i == b->u.i;
	case PGTREE_REAL:
		return a->u.d == b->u.d;
	case PGTREE_TRUE:
	case PGTREE_FALSE:
		return true;
	}
	return false;
}
