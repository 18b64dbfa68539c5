/* What tests/stubs/kernel.c records of the parent's calls. */
#ifndef PGTETHER_STUBS_H
#define PGTETHER_STUBS_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct stub_destroyed {
	struct addr local, remote;
	uint64_t cookie;
};
extern struct stub_destroyed stub_destroyed[64]; /* sockdiag_destroy's calls, in order */
extern size_t stub_n_destroyed;

#endif
