/*
 * The session's prepared statements, as far as pgtether can know them, so that an
 * approval covers one execution: a statement that needs approval is held at each
 * Bind of its protocol statement and at each SQL EXECUTE of its name, not once when
 * it is prepared.
 *
 * Protocol (Parse) and SQL (PREPARE) statements share one namespace on the server.
 * pgtether forwards a Parse or a PREPARE before the server says whether it took it
 * (an error earlier in a batch discards it; a name in use fails it; DEALLOCATE may
 * not run), so the model never forgets: each name keeps the union of the classes of
 * every statement ever prepared under it in the session ("all"). Only a Bind in the
 * same batch (no Sync in between) as the Parse of its name is known exactly: the
 * server either ran that Parse or discards the Bind too ("last"). A name pgtether
 * never saw prepared (a DO block's PREPARE) is unknown: the caller denies its
 * execution when the rule holds statements for approval.
 *
 * Names are compared by their first PREPARED_KEY bytes: the server cuts SQL names
 * at NAMEDATALEN - 1 bytes (at a character boundary of its encoding), protocol names
 * not at all, and two names that agree that far share one entry (the union again).
 */
#ifndef PGTETHER_PREPARED_H
#define PGTETHER_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sqlclass.h"

#define PREPARED_KEY 56
#define PREPARED_MAX_NAMES 4096      /* names tracked; more are unknown (see above) */
#define PREPARED_MAX_EXECS 8         /* names one statement EXECUTEs */
#define PREPARED_MAX_DEPTH 4         /* EXECUTE of a statement that EXECUTEs ... */
#define PREPARED_MAX_TEXT (16u << 20) /* texts kept per session; beyond, not shown (denied) */
#define PREPARED_MAX_TEXTS 4         /* distinct texts kept per name */

struct prepared_entry {
	char key[PREPARED_KEY + 1];  /* "" is the unnamed statement */
	bool used;                   /* the slot holds a name */
	bool known;                  /* prepared in this session, as far as pgtether saw */
	unsigned all, last;          /* classes: every statement under the name; the last */
	uint64_t last_batch;
	char *execs[PREPARED_MAX_EXECS]; /* names its statements EXECUTE (union) */
	size_t n_execs;
	bool execs_overflow;
	/* the distinct texts prepared under the name, for approvers: any of them may be
	 * what the server runs (texts_lost: not all could be kept) */
	char *texts[PREPARED_MAX_TEXTS];
	size_t text_lens[PREPARED_MAX_TEXTS];
	size_t n_texts, next_text;
	int last_text;               /* index of the last one, -1: not kept */
	bool texts_lost;
};

struct prepared_model {
	struct prepared_entry *e;    /* open addressing, cap a power of two */
	size_t n, cap;
	size_t text_bytes;
	uint64_t batch;              /* counts Syncs and simple Queries */
};

void prepared_init(struct prepared_model *m);
void prepared_release(struct prepared_model *m);

/*
 * A statement prepared under name (a Parse, or a PREPARE in a Query whose whole
 * text and classification these are): its classes join the name's, and text joins
 * those shown to approvers when keep_text (a rule without approvals needs no texts,
 * and keeps none: the hot path then copies nothing). 0, -ENOSPC (too many names:
 * the name stays unknown) or -ENOMEM.
 */
int prepared_note(struct prepared_model *m, const char *name, const struct sqlclass_result *c, const char *text,
		  size_t len, bool keep_text);

/* A Sync or a simple Query ends the batch. A simple Query the server runs (outside a
 * failed batch: drop_unnamed set) drops the unnamed statement. */
void prepared_end_batch(struct prepared_model *m, bool drop_unnamed);

struct prepared_view {
	unsigned classes;            /* what an execution of the name may run */
	const char *texts[PREPARED_MAX_TEXTS]; /* what it may be: one of these texts */
	size_t text_lens[PREPARED_MAX_TEXTS];
	size_t n_texts;
	bool complete;               /* every text it may be is among them */
};

/*
 * What executing name may run: `bind` for a protocol Bind (exact when the name was
 * parsed in this batch), else an SQL EXECUTE (always the union). Names it EXECUTEs
 * are followed. 0; -ENOENT when a name on the way is unknown; -ELOOP when the chain
 * is deeper than PREPARED_MAX_DEPTH or a statement EXECUTEs too many names.
 */
int prepared_resolve(const struct prepared_model *m, const char *name, bool bind, struct prepared_view *ret);

/* The text to show an approver for v: its one text, or all of them, each introduced
 * by a line saying the server runs one of them. malloc'd (*ret_len bytes); NULL when
 * v is not complete (not everything it may be was kept) or out of memory. */
char *prepared_view_text(const struct prepared_view *v, size_t *ret_len);

#endif
