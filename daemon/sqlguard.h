/*
 * What no statement may do, whatever a rule allows, because pgtether's own model of
 * the session depends on it: set, reset or shadow a pgtether.* setting (the identity
 * pgtether hands the database as pgtether.identity), or move client_encoding away from
 * UTF8 (pgtether reads every text as UTF8). And the texts whose bytes PostgreSQL would
 * read differently under one of its client-only encodings.
 *
 * The guard reads libpg_query's parse tree (pgtree.h) and the server-side code in it: the
 * bodies of SQL and PL/pgSQL functions, DO blocks, constant strings handed to functions
 * that run them as queries (query_to_xml, ts_stat, ts_rewrite) and constant dynamic
 * EXECUTEs. What it cannot read (a computed EXECUTE or query string, a computed
 * set_config name, code in another language) is refused, since it could do anything.
 */
#ifndef PGTETHER_SQLGUARD_H
#define PGTETHER_SQLGUARD_H

#include <jansson.h>
#include <stdbool.h>

#include "pgtree.h"
#include <stddef.h>

/* How deep function bodies, DO blocks and EXECUTE strings are followed. */
#define SQLGUARD_MAX_DEPTH 4

/*
 * Whether sql[0..len) could touch a guarded setting at all: a case-insensitive byte
 * scan for the words every such statement must contain in any reading of its bytes
 * (pgtether, set_config, pg_settings, client_encoding, NAMES, a U& escape, FUNCTION,
 * PROCEDURE, DO, and the query-running functions). false means it certainly cannot;
 * true means it must be parsed. It lets a rule with no statement checks skip the parse.
 */
bool sqlguard_may_touch(const char *sql, size_t len);

/*
 * 0 when sql[0..len) reads the same in UTF8 and in each of PostgreSQL's client-only
 * encodings in which it is valid (SJIS, BIG5, GBK, UHC, GB18030; JOHAB's trailing
 * bytes are never ASCII); -EILSEQ with why filled when a multi-byte character of one
 * of them would take an ASCII byte that matters to the lexer (a backslash, an operator
 * or bracket after an identifier). A hidden change of client_encoding could be in
 * flight ahead of any text, so such a text is refused. Costs nothing for ASCII text.
 */
int sqlguard_encoding(const char *sql, size_t len, char *why, size_t cap);

/*
 * The guard over one parsed text: root is pg_query_parse's tree of sql. 1 with why filled when a statement touches a
 * guarded setting or runs code the guard cannot read; 0 when none does; -ENOMEM.
 * stmt_classes[i] are the classes of statement i (to tell a read of pg_settings from
 * a write), depth how deep in nested code this text is (0 for a client's text).
 */
int sqlguard_tree(struct pgtree *root, const char *sql, const unsigned *stmt_classes, int depth, char *why, size_t cap);

/* The same over pg_query_parse_plpgsql's functions (its JSON, which libpg_query 15
 * has in no other form; only CREATE FUNCTION ... plpgsql and DO bodies that may touch
 * a setting come here): every expression is SQL the server runs; an EXECUTE of
 * anything but a constant is refused. */
int sqlguard_plpgsql(json_t *funcs, int depth, char *why, size_t cap);

#endif
