/*
 * Trusted token issuers, one JSON file each in /etc/pgtether/issuers.d (DESIGN.md
 * "Public interface"):
 *   { "issuer": "https://token.actions.githubusercontent.com", "audiences": ["pgtether"],
 *     "algorithms": ["RS256"], "jwks_file": "github.jwks.json", "leeway": 60 }
 * jwks_file is relative to the directory unless absolute. Files *.json are read in
 * lexical order; names starting with '.' or ending in '~' are skipped, and so are
 * *.jwks.json, the key sets that live beside them. Every error is
 * file:line:col: message, and one bad file fails the whole load: a reload keeps the
 * old set rather than lose an issuer silently.
 */
#ifndef PGTETHER_ISSUERS_H
#define PGTETHER_ISSUERS_H

#include <stddef.h>

#include "jsonpos.h"

#include "jwks.h"
#include "token.h"

#define ISSUERS_MAX 64
#define ISSUERS_ERR_LEN JSONPOS_ERR_LEN

struct issuers {
	struct token_issuer *v;      /* for token_verify() */
	size_t n;
	struct jwks *keys;           /* v[i].keys points at keys[i] */
	char **strings;              /* every string v[] points into, to free */
	size_t n_strings;
};

/* Loads every issuer file of dir. A missing dir is an empty set. 0 or -errno with err. */
int issuers_load_dir(const char *dir, struct issuers *ret, char *err);

/* The same through a configuration source (cfgsrc.h; NULL: the disk). */
struct cfgsrc;
int issuers_load_dir_src(const char *dir, struct cfgsrc *src, struct issuers *ret, char *err);

/*
 * One issuer file's text (`name` in messages) with its key set's text, into a set of
 * one: what issuers_load_dir does for each file, without the files (the fuzzer's
 * entry). 0 or -errno with err.
 */
int issuers_parse(const char *name, const char *text, size_t len, const char *jwks_text, size_t jwks_len,
		  struct issuers *ret, char *err);

void issuers_release(struct issuers *is);

#endif
