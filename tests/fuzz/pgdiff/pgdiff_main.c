/* run.sh texts: the differential check over files of SQL texts. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int pgdiff_one(const char *sql, FILE *report, bool trees);
extern unsigned long pgdiff_counts[8];
/* args: files, each one SQL text; "-s FILE": one text per line, \n and \\ escaped */
int main(int argc, char **argv)
{
	long total = 0, texts = 0;
	for (int f = 1; f < argc; f++) {
		bool lines = !strcmp(argv[f], "-s");
		if (lines) f++;
		FILE *fp = fopen(argv[f], "rb");
		if (!fp) { perror(argv[f]); continue; }
		char *buf = malloc(4 << 20);
		size_t len = fread(buf, 1, (4 << 20) - 1, fp);
		buf[len] = 0;
		fclose(fp);
		if (!lines) { total += pgdiff_one(buf, stdout, true); texts++; }
		else {
			for (char *l = buf, *e; *l; l = e + 1) {
				e = strchr(l, '\n'); if (!e) e = l + strlen(l);
				char *t = malloc(e - l + 1), *o = t;
				for (char *p = l; p < e; p++) {
					if (*p == '\\' && p + 1 < e && p[1] == 'n') { *o++ = '\n'; p++; }
					else if (*p == '\\' && p + 1 < e && p[1] == 't') { *o++ = '\t'; p++; }
					else if (*p == '\\' && p + 1 < e && p[1] == '\\') { *o++ = '\\'; p++; }
					else *o++ = *p;
				}
				*o = 0;
				total += pgdiff_one(t, stdout, true); texts++;
				free(t);
				if (!*e) break;
			}
		}
		free(buf);
	}
	printf("%ld texts, %ld differences; trees compared equal: %lu, refused by both: %lu\n", texts, total,
	       pgdiff_counts[1], pgdiff_counts[2]);
	return total != 0;
}
