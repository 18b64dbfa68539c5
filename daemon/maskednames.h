/*
 * Which of a masked session's prepared statements name a masked table, by statement
 * name (the Parse that prepared it said so): a Bind of one has its parameters
 * recorded masked, and what the server says in answer withheld (client_side.c,
 * sessrec.c). Only what is known to name no masked table counts as clean: a name
 * never seen or forgotten is taken as masked. Names are compared as the server
 * compares them, by their first MASKEDNAMES_NAME - 1 bytes (NAMEDATALEN - 1).
 *
 * Pure: a small fixed table, no allocation.
 */
#ifndef PGTETHER_MASKEDNAMES_H
#define PGTETHER_MASKEDNAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MASKEDNAMES_MAX 16     /* statement names remembered; older ones are forgotten */
#define MASKEDNAMES_NAME 64    /* kept bytes of a name, with its NUL: the server's NAMEDATALEN */

struct maskednames {
	struct { char name[MASKEDNAMES_NAME]; bool used, masked; } v[MASKEDNAMES_MAX];
	unsigned next;             /* the slot taken next when all are used */
	bool lost;                 /* a masked name was forgotten, or SQL prepared one */
};

/* A Parse of statement name (NUL-terminated; "" the unnamed one): masked says whether
 * it names a masked table. A named statement stays masked once it was: a second Parse
 * of the name fails on the server, which keeps the first. */
void maskednames_note(struct maskednames *m, const char *name, bool masked);

/* Named statements changed where pgtether does not follow them (PREPARE, DEALLOCATE,
 * code): no named statement is known clean any more. */
void maskednames_lose(struct maskednames *m);

/* Whether statement name is known to name no masked table. */
bool maskednames_clean(const struct maskednames *m, const char *name);

/* Whether the whole Bind body[0..len) binds a statement known to name no masked table
 * (a malformed body: no). */
bool maskednames_bind_clean(const struct maskednames *m, const uint8_t *body, size_t len);

#endif
