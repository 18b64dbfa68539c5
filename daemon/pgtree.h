/*
 * libpg_query's parse tree, read from its protobuf form (pg_query_parse_protobuf)
 * and presented exactly as its JSON form (pg_query_parse) read with jansson would
 * be, without the JSON text: the SQL classifier's walkers (sqlclass, sqlclass_out,
 * sqlguard, searchpath) decide what a statement may do from that shape, so the
 * shape is kept and only the representation changes.
 *
 * What the JSON shows, and so what this tree shows:
 *  - a node struct is an object whose keys are its C field names as libpg_query's
 *    JSON writes them (pg_query.proto's json_name: "targetList", "stmt_len"); a
 *    field typed Node * is wrapped in an object with the node type as its one key
 *    ({"SelectStmt": {...}}, {"A_Const": {...}}); a NULL list element is {};
 *  - a field is absent when it is a NULL pointer, an empty list, a false bool, a
 *    zero number or char, or an empty string (which the protobuf form cannot tell
 *    from NULL), except a String's, Float's or BitString's own value, which is
 *    always there (SELECT '' has {"sval": {"sval": ""}}), as is a Boolean node's
 *    ({"Boolean": {"boolval": false}}, but an A_Const's false is {"boolval": {}}),
 *    and COPY's file name '';
 *    an Integer node's value when not zero (libpg_query's JSON dropped negative
 *    ones too, so lo_open(x, -131072) read as mode 0: not mimicked), and the
 *    root's "stmts" is there even when empty;
 *  - enums are always present, as their names ("AEXPR_OP", "OBJECT_TABLE");
 *  - a tree jansson would not load is refused: a value nested more than
 *    PGTREE_MAX_DEPTH deep (jansson's JSON_PARSER_MAX_DEPTH) or a string that is
 *    not valid UTF-8 (E'\xff'). So is one with a field or enum value this build
 *    does not know: nothing is guessed.
 *
 * Values are `struct pgtree *`; the functions below take NULL and values of the
 * wrong kind as jansson's do (NULL, 0, false), so a walker's chains of lookups
 * need no checks in between. Members keep the order of the JSON (field order).
 */
#ifndef PGTETHER_PGTREE_H
#define PGTETHER_PGTREE_H

#include <stdbool.h>
#include <stddef.h>

#define PGTREE_MAX_DEPTH 2048

enum pgtree_kind {
	PGTREE_OBJECT = 1,
	PGTREE_ARRAY,
	PGTREE_STRING,
	PGTREE_INTEGER,
	PGTREE_REAL,
	PGTREE_TRUE,
	PGTREE_FALSE,                   /* only a Boolean node's own value */
};

struct pgtree_member;

struct pgtree {
	enum pgtree_kind kind;
	unsigned n;                     /* members of an object, items of an array */
	union {
		struct pgtree_member *members;
		struct pgtree *items;
		const char *s;
		long long i;
		double d;
	} u;
};

struct pgtree_member {
	const char *key;
	struct pgtree v;
};

/* A tree and the memory it lives in. */
struct pgtree_doc;

/*
 * The tree of pg_query_parse_protobuf(sql)'s output data[0..len), sql the text it
 * parsed (a COPY's empty file name is told from STDIN by its tokens, which
 * pg_query_scan reads with the same standard_conforming_strings). 0 with *ret_doc
 * set; -EINVAL when it does not unpack or is refused (see above), -ENOMEM. Recurses
 * once per nesting level, as the unpacking does: call it where the parse ran (the
 * big stack of a long text's parse thread).
 */
int pgtree_doc_from_protobuf(const void *data, size_t len, const char *sql, struct pgtree_doc **ret_doc);

/*
 * How deeply the messages of data[0..len) nest (the root is 1), read without
 * recursion: so a caller on a small stack can tell whether unpacking it may recurse
 * too deep there (about 1 KiB of stack per level). Past PGTREE_MAX_DEPTH + 1 it stops
 * counting (such a tree is refused anyway). 0, or -EINVAL for bytes that are not a
 * ParseResult.
 */
int pgtree_protobuf_depth(const void *data, size_t len, size_t *ret_depth);

/* The root object ({"version": ..., "stmts": [...]}). */
struct pgtree *pgtree_doc_root(struct pgtree_doc *doc);

/* Frees the tree and everything in it; NULL is fine. No recursion. */
void pgtree_doc_free(struct pgtree_doc *doc);

/* json_object_get: the member key of object o, or NULL. */
struct pgtree *pgtree_get(const struct pgtree *o, const char *key);

/* json_array_size / json_array_get. */
size_t pgtree_size(const struct pgtree *a);
struct pgtree *pgtree_at(const struct pgtree *a, size_t i);

/* json_object_size, and member i's key and value (in order). */
size_t pgtree_members(const struct pgtree *o);
const char *pgtree_key_at(const struct pgtree *o, size_t i);
struct pgtree *pgtree_value_at(const struct pgtree *o, size_t i);

/* json_string_value, json_integer_value, json_is_true. */
const char *pgtree_str(const struct pgtree *v);
long long pgtree_int(const struct pgtree *v);
bool pgtree_is_true(const struct pgtree *v);

bool pgtree_is_object(const struct pgtree *v);
bool pgtree_is_array(const struct pgtree *v);
bool pgtree_is_string(const struct pgtree *v);

/* A node's type: the first key of object node ({"SelectStmt": {...}} → "SelectStmt"),
 * as json_object_iter_key(json_object_iter(node)); NULL for an empty object or a
 * value that is not one. */
const char *pgtree_type(const struct pgtree *node);

/* json_equal: the same values, objects compared key by key in any order. */
bool pgtree_equal(const struct pgtree *a, const struct pgtree *b);

/* json_object_foreach / json_array_foreach. */
#define pgtree_foreach_member(o, i, key, v)                                                               \
	for ((i) = 0; (i) < pgtree_members(o) && ((key) = pgtree_key_at((o), (i)), (v) = pgtree_value_at((o), (i)), 1); \
	     (i)++)
#define pgtree_foreach(a, i, v) for ((i) = 0; (i) < pgtree_size(a) && ((v) = pgtree_at((a), (i)), 1); (i)++)

#endif
