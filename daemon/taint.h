/*
 * Which batches of a masked session have their server text withheld (server_side.c):
 * a batch (the messages up to a Query or Sync, answered by one ReadyForQuery) is
 * marked when it sends a statement that touches a masked table or runs code pgtether
 * cannot follow; what the server says in answer to it, and to the rest of its
 * transaction, reaches the client in pgtether's words. Batches are counted by two
 * free-running numbers: the one being sent (c_batch) and the one being answered
 * (s_batch); a count that cannot be trusted withholds.
 *
 * Pure: a fixed bitmap, no allocation.
 */
#ifndef PGTETHER_TAINT_H
#define PGTETHER_TAINT_H

#include <stdbool.h>
#include <stdint.h>

/* Batches tracked by number: at most SESSION_MAX_PENDING (4096) are outstanding, and
 * one open, so twice that many bits never wrap onto a live one. A power of two, so
 * that the numbers wrapping at 2^32 keep their bits. */
#define TAINT_BATCHES 8192

struct taint {
	uint64_t bits[TAINT_BATCHES / 64];
	bool tx;                   /* the open transaction had a withheld batch */
};

/* What the server says in answer to batch c_batch (being sent now) is withheld. */
void taint_mark(struct taint *t, uint32_t c_batch);

/* Whether what the server says now, in answer to batch s_batch, is withheld: its
 * batch is marked, or an earlier one of the same transaction was (a deferred
 * constraint fails at COMMIT, a cursor is fetched later), or more batches than are
 * tracked are outstanding. */
bool taint_withheld(const struct taint *t, uint32_t s_batch, uint32_t c_batch);

/* The ReadyForQuery of batch s_batch came (in_tx: its status is not 'I'): its mark is
 * cleared, and carried over to what follows while the transaction is open. */
void taint_answered(struct taint *t, uint32_t s_batch, uint32_t c_batch, bool in_tx);

#endif
