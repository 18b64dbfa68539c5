/*
 * The withheld batches of a masked session (taint.h): one bit per batch number,
 * modulo TAINT_BATCHES, set when it is sent, read and cleared when it is answered.
 */
#include "taint.h"

void taint_mark(struct taint *t, uint32_t c_batch)
{
	uint32_t b = c_batch % TAINT_BATCHES;

	t->bits[b / 64] |= UINT64_C(1) << (b % 64);
}

bool taint_withheld(const struct taint *t, uint32_t s_batch, uint32_t c_batch)
{
	uint32_t b = s_batch % TAINT_BATCHES;

	if (t->tx || c_batch - s_batch >= TAINT_BATCHES)
		return true;
	return (t->bits[b / 64] >> (b % 64)) & 1;
}

void taint_answered(struct taint *t, uint32_t s_batch, uint32_t c_batch, bool in_tx)
{
	uint32_t b = s_batch % TAINT_BATCHES;

	t->tx = in_tx && taint_withheld(t, s_batch, c_batch);
	t->bits[b / 64] &= ~(UINT64_C(1) << (b % 64));
}
