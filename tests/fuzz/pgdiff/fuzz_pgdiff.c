/* run.sh fuzz: the differential check under libFuzzer; a difference aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int pgdiff_one(const char *sql, FILE *report, bool trees);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = 0;
	if (pgdiff_one(s, stderr, true))
		abort();
	free(s);
	return 0;
}
