/*
 * Private to the SQL classifier's two files: sqlclass.c (parse, statement classes,
 * the walk) and sqlclass_out.c (where column values leave, resolved calls, views).
 */
#ifndef PGTETHER_SQLCLASS_INT_H
#define PGTETHER_SQLCLASS_INT_H

#include <jansson.h>
#include <pg_query.h>
#include <stdbool.h>

#include "sqlclass.h"

/* Whether name is one of list[0..n). */
bool sqlclass_listed(const char *const *list, size_t n, const char *name);

/* Adds "schema.name" (or name) to list once; *err: -E2BIG when full, -ENOMEM. */
void sqlclass_add_name(char **list, size_t *n, const char *schema, const char *name, int *err);

/* The text of a String node, or NULL. */
const char *sqlclass_sval(json_t *string_node);

/* Adds (kind, name, column) to r's resolved calls, once (sqlclass_out.c). */
void sqlclass_add_call(struct sqlclass_result *r, char kind, const char *name, const char *column, int *err);

/* Parses sql with standard_conforming_strings = scs (a long text on a thread with a
 * big stack). 0 or -errno; the result's error says when it does not parse. */
int sqlclass_parse_text(const char *sql, bool scs, PgQueryParseResult *ret);

/* Where the values of statement node (one "stmt" of the tree) go: r's carriers,
 * computed and written columns and resolved calls. 0 or -errno. */
int sqlclass_out_statement(struct sqlclass_result *r, json_t *node);

#endif
