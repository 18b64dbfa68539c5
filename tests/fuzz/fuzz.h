/*
 * Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c, `make fuzz`): each takes
 * bytes a workload or a server could send and drives one parser with them, under
 * ASan and UBSan. A harness aborts (fuzz_check) where the module broke a promise its
 * header makes, so libFuzzer keeps that input as a crash.
 */
#ifndef PGTETHER_FUZZ_H
#define PGTETHER_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define fuzz_check(cond)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* A NUL-terminated copy of data[0..size) (the parsers of text take C strings). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Splits data[0..size) at the first NUL: *a is before it, *b after (empty when none). */
static inline void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *alen, const uint8_t **b,
			      size_t *blen)
{
	const uint8_t *z = memchr(data, 0, size);

	*a = data;
	*alen = z ? (size_t)(z - data) : size;
	*b = z ? z + 1 : data + size;
	*blen = z ? size - *alen - 1 : 0;
}

#endif
