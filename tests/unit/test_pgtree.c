/* Unit tests for daemon/pgtree.c: libpg_query's protobuf tree read as its JSON tree
 * reads (the keys, what is present, what is refused). The whole equivalence was
 * checked against the JSON walkers over every corpus and a differential fuzzer (see
 * the commit that brought pgtree in); these pin the rules one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgtree.h"

/* The tree of sql (standard_conforming_strings on), or NULL with *rc set. */
static struct pgtree_doc *tree(const char *sql, int *rc)
{
	PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
	struct pgtree_doc *doc = NULL;

	assert_null(pr.error);
	*rc = pgtree_doc_from_protobuf(pr.parse_tree.data, pr.parse_tree.len, sql, &doc);
	pg_query_free_protobuf_parse_result(pr);
	return doc;
}

static struct pgtree *stmt(struct pgtree_doc *doc, size_t i)
{
	return pgtree_get(pgtree_at(pgtree_get(pgtree_doc_root(doc), "stmts"), i), "stmt");
}

static struct pgtree *first_target(struct pgtree_doc *doc)
{
	struct pgtree *sel = pgtree_get(stmt(doc, 0), "SelectStmt");

	return pgtree_get(pgtree_get(pgtree_at(pgtree_get(sel, "targetList"), 0), "ResTarget"), "val");
}

static void test_keys_and_wrappers(void **state)
{
	struct pgtree_doc *doc;
	struct pgtree *sel, *rv, *v;
	const char *k;
	size_t i, n = 0;
	int rc;

	(void)state;
	doc = tree("SELECT a FROM s.t AS x WHERE b = 1", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(pgtree_int(pgtree_get(pgtree_doc_root(doc), "version")), PG_VERSION_NUM);
	assert_string_equal(pgtree_type(stmt(doc, 0)), "SelectStmt");
	sel = pgtree_get(stmt(doc, 0), "SelectStmt");
	/* C field names, as the JSON has them; enums by name; nodes wrapped by type */
	assert_true(pgtree_is_array(pgtree_get(sel, "targetList")));
	assert_null(pgtree_get(sel, "target_list"));
	assert_string_equal(pgtree_str(pgtree_get(sel, "op")), "SETOP_NONE");
	assert_string_equal(pgtree_str(pgtree_get(sel, "limitOption")), "LIMIT_OPTION_DEFAULT");
	rv = pgtree_get(pgtree_at(pgtree_get(sel, "fromClause"), 0), "RangeVar");
	assert_string_equal(pgtree_str(pgtree_get(rv, "schemaname")), "s");
	assert_string_equal(pgtree_str(pgtree_get(rv, "relname")), "t");
	assert_string_equal(pgtree_str(pgtree_get(rv, "relpersistence")), "p"); /* a char */
	assert_true(pgtree_is_true(pgtree_get(rv, "inh")));
	/* a field typed RangeVar's own struct (Alias here) is not wrapped */
	assert_string_equal(pgtree_str(pgtree_get(pgtree_get(rv, "alias"), "aliasname")), "x");
	assert_null(pgtree_get(rv, "catalogname")); /* NULL */
	assert_string_equal(pgtree_type(pgtree_get(sel, "whereClause")), "A_Expr");
	assert_string_equal(pgtree_str(pgtree_get(pgtree_get(pgtree_get(sel, "whereClause"), "A_Expr"), "kind")),
			    "AEXPR_OP");
	/* members in the JSON's order */
	pgtree_foreach_member(rv, i, k, v) {
		static const char *const order[] = { "schemaname", "relname", "inh", "relpersistence", "alias", "location" };

		assert_true(n < 6);
		assert_string_equal(k, order[n++]);
		assert_non_null(v);
	}
	assert_int_equal(n, 6);
	pgtree_doc_free(doc);

	/* a text of comments: "stmts" is there, empty */
	doc = tree("-- nothing", &rc);
	assert_int_equal(rc, 0);
	assert_true(pgtree_is_array(pgtree_get(pgtree_doc_root(doc), "stmts")));
	assert_int_equal(pgtree_size(pgtree_get(pgtree_doc_root(doc), "stmts")), 0);
	pgtree_doc_free(doc);
}

static void test_values(void **state)
{
	struct pgtree_doc *doc;
	struct pgtree *c, *d;
	int rc;

	(void)state;
	/* an Integer's value unless zero: libpg_query 15-4.0.0's JSON also dropped a
	 * negative one, which hid lo_open's write bit in -131072 */
	doc = tree("SELECT 5, 0, -5", &rc);
	assert_int_equal(rc, 0);
	c = pgtree_get(pgtree_get(stmt(doc, 0), "SelectStmt"), "targetList");
	assert_int_equal(pgtree_int(pgtree_get(pgtree_get(pgtree_get(pgtree_get(pgtree_get(pgtree_at(c, 0), "ResTarget"), "val"),
							      "A_Const"), "ival"), "ival")), 5);
	d = pgtree_get(pgtree_get(pgtree_get(pgtree_get(pgtree_at(c, 1), "ResTarget"), "val"), "A_Const"), "ival");
	assert_true(pgtree_is_object(d));
	assert_int_equal(pgtree_members(d), 0);
	assert_int_equal(pgtree_int(pgtree_get(pgtree_get(pgtree_get(pgtree_get(pgtree_get(pgtree_at(c, 2), "ResTarget"), "val"),
							      "A_Const"), "ival"), "ival")), -5);
	pgtree_doc_free(doc);

	/* '' is a string; false in an A_Const is {} */
	doc = tree("SELECT '', false", &rc);
	c = pgtree_get(first_target(doc), "A_Const");
	assert_string_equal(pgtree_str(pgtree_get(pgtree_get(c, "sval"), "sval")), "");
	c = pgtree_get(pgtree_get(pgtree_get(pgtree_at(pgtree_get(pgtree_get(stmt(doc, 0), "SelectStmt"), "targetList"), 1),
					     "ResTarget"), "val"), "A_Const");
	assert_non_null(pgtree_get(c, "boolval"));
	assert_null(pgtree_get(pgtree_get(c, "boolval"), "boolval"));
	pgtree_doc_free(doc);

	/* a Boolean node of its own says false */
	doc = tree("CREATE ROLE r NOLOGIN", &rc);
	d = pgtree_get(pgtree_at(pgtree_get(pgtree_get(stmt(doc, 0), "CreateRoleStmt"), "options"), 0), "DefElem");
	c = pgtree_get(pgtree_get(pgtree_get(d, "arg"), "Boolean"), "boolval");
	assert_non_null(c);
	assert_false(pgtree_is_true(c));
	assert_int_equal(c->kind, PGTREE_FALSE);
	pgtree_doc_free(doc);
}

/* COPY's '' and STDIN are both "" in the protobuf form; the JSON tells them apart. */
static void test_copy_file(void **state)
{
	static const struct { const char *sql; bool file; } cases[] = {
		{ "COPY t FROM ''", true },
		{ "COPY t FROM STDIN", false },
		{ "COPY t (a, b) TO STDOUT WITH (FORMAT csv, DELIMITER ',')", false },
		{ "COPY (SELECT ')' FROM x) TO E''", true },
		{ "COPY t FROM PROGRAM ''", true },
		{ "COPY t TO '/tmp/x'", true },
		{ "SELECT 1; COPY t FROM $$$$; COPY t FROM stdin", true },
	};
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pgtree_doc *doc = tree(cases[i].sql, &rc);
		size_t s = strncmp(cases[i].sql, "SELECT", 6) ? 0 : 1;
		struct pgtree *f = pgtree_get(pgtree_get(stmt(doc, s), "CopyStmt"), "filename");

		assert_int_equal(rc, 0);
		assert_int_equal(pgtree_is_string(f), cases[i].file);
		if (s) /* the third statement's STDIN */
			assert_null(pgtree_get(pgtree_get(stmt(doc, 2), "CopyStmt"), "filename"));
		pgtree_doc_free(doc);
	}
}

static void test_refused(void **state)
{
	struct pgtree_doc *doc = NULL;
	char sql[8192];
	size_t n;
	int rc;
	PgQueryProtobufParseResult pr;
	uint8_t *bytes;

	(void)state;
	/* what json_loads refused: a string that is not UTF-8, a tree past its depth */
	assert_null(tree("SELECT '\xff'", &rc));
	assert_int_equal(rc, -EINVAL);
	assert_null(tree("SELECT '\xed\xa0\x80'", &rc)); /* a surrogate */
	assert_int_equal(rc, -EINVAL);
	assert_null(tree("SELECT '\xc0\xaf'", &rc)); /* overlong */
	assert_int_equal(rc, -EINVAL);
	doc = tree("SELECT '\xc3\xa9\xf0\x9f\x98\x80'", &rc);
	assert_int_equal(rc, 0);
	pgtree_doc_free(doc);
	for (size_t depth = 1017; depth <= 1018; depth++) {
		n = (size_t)snprintf(sql, sizeof(sql), "SELECT ");
		for (size_t i = 0; i < depth; i++)
			n += (size_t)snprintf(sql + n, sizeof(sql) - n, "-(");
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, "x");
		for (size_t i = 0; i < depth; i++)
			n += (size_t)snprintf(sql + n, sizeof(sql) - n, ")");
		doc = tree(sql, &rc);
		/* JSON depth 2048 is jansson's limit, reached at 1018 */
		assert_int_equal(rc, depth == 1017 ? 0 : -EINVAL);
		pgtree_doc_free(doc);
	}

	/* the nesting of the packed messages, counted without unpacking */
	pr = pg_query_parse_protobuf("SELECT 1");
	assert_int_equal(pgtree_protobuf_depth(pr.parse_tree.data, pr.parse_tree.len, &n), 0);
	assert_int_equal(n, 9); /* ParseResult RawStmt Node SelectStmt Node ResTarget Node A_Const Integer */
	pg_query_free_protobuf_parse_result(pr);
	assert_int_equal(pgtree_protobuf_depth("\x12\x05", 2, &n), -EINVAL); /* runs past the end */

	/* bytes that do not unpack, and a field this build does not know */
	assert_int_equal(pgtree_doc_from_protobuf("\xff\xff\xff", 3, "", &doc), -EINVAL);
	pr = pg_query_parse_protobuf("SELECT 1");
	bytes = malloc(pr.parse_tree.len + 3);
	memcpy(bytes, pr.parse_tree.data, pr.parse_tree.len);
	memcpy(bytes + pr.parse_tree.len, "\x98\x06\x01", 3); /* field 99 (a varint): 1 */
	assert_int_equal(pgtree_doc_from_protobuf(bytes, pr.parse_tree.len + 3, "SELECT 1", &doc), -EINVAL);
	assert_int_equal(pgtree_doc_from_protobuf(bytes, pr.parse_tree.len, "SELECT 1", &doc), 0);
	pgtree_doc_free(doc);
	free(bytes);
	pg_query_free_protobuf_parse_result(pr);
}

static void test_accessors_and_equal(void **state)
{
	struct pgtree_doc *a, *b, *c;
	int rc;

	(void)state;
	/* as jansson's: NULL and the wrong kind give NULL, 0, false */
	assert_null(pgtree_get(NULL, "x"));
	assert_int_equal(pgtree_size(NULL), 0);
	assert_null(pgtree_at(NULL, 0));
	assert_null(pgtree_str(NULL));
	assert_int_equal(pgtree_int(NULL), 0);
	assert_false(pgtree_is_true(NULL));
	assert_null(pgtree_type(NULL));
	pgtree_doc_free(NULL);
	a = tree("SELECT a FROM t", &rc);
	b = tree("SELECT a FROM t", &rc);
	c = tree("SELECT b FROM t", &rc);
	assert_null(pgtree_str(pgtree_doc_root(a)));
	assert_null(pgtree_at(pgtree_get(pgtree_doc_root(a), "stmts"), 1));
	assert_null(pgtree_get(pgtree_get(pgtree_doc_root(a), "stmts"), "stmt"));
	assert_true(pgtree_equal(pgtree_doc_root(a), pgtree_doc_root(b)));
	assert_false(pgtree_equal(pgtree_doc_root(a), pgtree_doc_root(c)));
	pgtree_doc_free(a);
	pgtree_doc_free(b);
	pgtree_doc_free(c);
	/* locations count, as they did in the JSON */
	a = tree("SELECT a FROM t", &rc);
	b = tree("SELECT  a FROM t", &rc);
	assert_false(pgtree_equal(pgtree_doc_root(a), pgtree_doc_root(b)));
	pgtree_doc_free(a);
	pgtree_doc_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_and_wrappers),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_copy_file),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_accessors_and_equal),
	};

	return cmocka_run_group_tests_name("pgtree", tests, NULL, NULL);
}
