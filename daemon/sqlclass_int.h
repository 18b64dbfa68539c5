/*
 * Private to the SQL classifier's two files: sqlclass.c (parse, statement classes,
 * the walk) and sqlclass_out.c (where column values leave, resolved calls, views).
 */
#ifndef PGTETHER_SQLCLASS_INT_H
#define PGTETHER_SQLCLASS_INT_H

#include <pg_query.h>
#include <stdbool.h>

#include "pgtree.h"
#include "sqlclass.h"

/* Whether name is one of list[0..n). */
bool sqlclass_listed(const char *const *list, size_t n, const char *name);

/* Adds "schema.name" (or name) to list once; *err: -E2BIG when full, -ENOMEM. */
void sqlclass_add_name(char **list, size_t *n, const char *schema, const char *name, int *err);

/* The text of a String node, or NULL. */
const char *sqlclass_sval(struct pgtree *string_node);

/* Adds (kind, name, column) to r's resolved calls, once (sqlclass_out.c). */
void sqlclass_add_call(struct sqlclass_result *r, char kind, const char *name, const char *column, int *err);

/* One reading's parse: its tree, or why there is none. */
struct sqlclass_parse {
	struct pgtree_doc *doc;         /* NULL when it does not parse or is refused */
	bool syntax;                    /* it does not parse: message, cursorpos */
	char message[SQLCLASS_ERR_LEN];
	int cursorpos;
	int tree_err;                   /* it parses, but its tree is refused (pgtree.h:
					 * -EINVAL for what json_loads refused) or -ENOMEM */
};

/* Parses sql with standard_conforming_strings = scs (a long text on a thread with a
 * big stack) and reads its tree. 0 or -errno (the parser could not start); *ret says
 * the rest, and is released with sqlclass_parse_release either way. */
int sqlclass_parse_text(const char *sql, bool scs, struct sqlclass_parse *ret);

void sqlclass_parse_release(struct sqlclass_parse *p);

/* Where the values of statement node (one "stmt" of the tree) go: r's carriers,
 * computed and written columns and resolved calls. 0 or -errno. */
int sqlclass_out_statement(struct sqlclass_result *r, struct pgtree *node);

#endif
