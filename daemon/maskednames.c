/*
 * The masked session's memory of which prepared statements name a masked table
 * (maskednames.h). Sixteen names are enough for the drivers that name statements
 * (they reuse a few); forgetting one that was masked makes every named statement
 * count as masked from then on, never as clean.
 */
#include "maskednames.h"

#include <stdio.h>
#include <string.h>

/* Whether the server takes a and b for one statement: its table of prepared statements
 * keys names by their first NAMEDATALEN - 1 bytes, protocol names too (a Parse of a
 * longer name that agrees that far fails as "already exists"). */
static bool same_name(const char *a, const char *b)
{
	return strncmp(a, b, MASKEDNAMES_NAME - 1) == 0;
}

void maskednames_note(struct maskednames *m, const char *name, bool masked)
{
	unsigned i;

	for (i = 0; i < MASKEDNAMES_MAX; i++)
		if (m->v[i].used && same_name(m->v[i].name, name))
			break;
	if (i == MASKEDNAMES_MAX) {
		i = m->next++ % MASKEDNAMES_MAX;
		if (m->v[i].used && m->v[i].masked && m->v[i].name[0])
			m->lost = true; /* its name could now be taken for clean */
	} else if (name[0] && m->v[i].masked) {
		masked = true;
	}
	snprintf(m->v[i].name, sizeof(m->v[i].name), "%s", name);
	m->v[i].used = true;
	m->v[i].masked = masked;
}

void maskednames_lose(struct maskednames *m)
{
	m->lost = true;
}

bool maskednames_clean(const struct maskednames *m, const char *name)
{
	if (name[0] && m->lost)
		return false;
	for (unsigned i = 0; i < MASKEDNAMES_MAX; i++)
		if (m->v[i].used && same_name(m->v[i].name, name))
			return !m->v[i].masked;
	return false; /* not known: as if it did */
}

bool maskednames_bind_clean(const struct maskednames *m, const uint8_t *body, size_t len)
{
	size_t portal = strnlen((const char *)body, len);

	if (portal >= len || !memchr(body + portal + 1, 0, len - portal - 1))
		return false;
	return maskednames_clean(m, (const char *)body + portal + 1);
}
