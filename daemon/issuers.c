/*
 * issuers.d loading (see issuers.h).
 */
#include "issuers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgsrc.h"
#include "jsonpos.h"

static const char *const keys_allowed[] = {
	"issuer", "audiences", "algorithms", "jwks_file", "leeway", "max_token_bytes", NULL,
};


static char *keep(struct issuers *is, const char *str)
{
	char *copy = strdup(str);
	char **more;

	if (!copy)
		return NULL;
	more = realloc(is->strings, (is->n_strings + 1) * sizeof(*more));
	if (!more) {
		free(copy);
		return NULL;
	}
	is->strings = more;
	is->strings[is->n_strings++] = copy;
	return copy;
}

/* A file of at most max bytes that nobody but its owner may write: an issuer, or
 * its key set. */
static int read_text(struct cfgsrc *src, const char *path, char **ret, size_t *ret_len, size_t max, char *err)
{
	struct stat st;
	char *text;
	size_t len;
	int r;

	if ((r = cfgsrc_read(src, path, max, false, &text, &len, &st, err, ISSUERS_ERR_LEN)) < 0)
		return r;
	if (st.st_mode & 022) {
		free(text);
		snprintf(err, ISSUERS_ERR_LEN, "%s: writable by group or others (mode %04o): anyone could add a trusted key; chmod go-w %s",
			 path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	*ret = text;
	*ret_len = len;
	return 0;
}

/* One issuer file's text into is->v[slot]; its key set is jwks_text when not NULL, else
 * read from the file jwks_file names. */
static int parse_one(struct issuers *is, struct cfgsrc *src, const char *dir, struct jsonpos_src *s, size_t slot,
		     const char *jwks_text, size_t jwks_len)
{
	struct token_issuer *ti = &is->v[slot];
	const char **auds;
	char jwks_path[PATH_MAX], *jtext, jerrbuf[256];
	json_error_t jerr;
	json_t *root, *v, *x;
	const char *key;
	size_t i, jlen;
	int r = 0;

	root = json_loadb(s->text, s->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(s->err, ISSUERS_ERR_LEN, "%s:%d:%d: %s", s->name, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		r = jsonpos_fail(s, "", "an issuer file holds one JSON object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		const char *const *k;
		char ptr[300];

		if (strncmp(key, "//", 2) == 0)
			continue;
		for (k = keys_allowed; *k && strcmp(*k, key); k++)
			;
		if (!*k) {
			snprintf(ptr, sizeof(ptr), "/%s", key);
			r = jsonpos_fail(s, ptr, "unknown key '%s'", key);
			goto out;
		}
	}
	v = json_object_get(root, "issuer");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		r = jsonpos_fail(s, v ? "/issuer" : "", "\"issuer\" must be the exact \"iss\" of its tokens, e.g. \"https://token.actions.githubusercontent.com\"");
		goto out;
	}
	for (i = 0; i < slot; i++)
		if (strcmp(is->v[i].issuer, json_string_value(v)) == 0) {
			r = jsonpos_fail(s, "/issuer", "issuer '%s' is defined twice", json_string_value(v));
			goto out;
		}
	if (!(ti->issuer = keep(is, json_string_value(v)))) {
		r = -ENOMEM;
		goto out;
	}

	v = json_object_get(root, "audiences");
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 16) {
		r = jsonpos_fail(s, v ? "/audiences" : "", "\"audiences\" must list 1 to 16 accepted \"aud\" values");
		goto out;
	}
	auds = calloc(json_array_size(v), sizeof(*auds));
	if (!auds || !keep(is, "")) { /* reserve a slot so the array is freed with the strings */
		free(auds);
		r = -ENOMEM;
		goto out;
	}
	free(is->strings[is->n_strings - 1]);
	is->strings[is->n_strings - 1] = (char *)auds;
	json_array_foreach(v, i, x) {
		if (!json_is_string(x) || json_string_length(x) == 0) {
			char ptr[64];

			snprintf(ptr, sizeof(ptr), "/audiences/%zu", i);
			r = jsonpos_fail(s, ptr, "an audience must be a non-empty string");
			goto out;
		}
		if (!(auds[i] = keep(is, json_string_value(x)))) {
			r = -ENOMEM;
			goto out;
		}
	}
	ti->audiences = (const char *const *)auds;
	ti->n_audiences = json_array_size(v);

	v = json_object_get(root, "algorithms");
	if (!json_is_array(v) || json_array_size(v) == 0) {
		r = jsonpos_fail(s, v ? "/algorithms" : "", "\"algorithms\" must list the signature algorithms of this issuer (RS256, RS384, RS512, ES256, ES384)");
		goto out;
	}
	json_array_foreach(v, i, x) {
		static const char *const names[] = { "RS256", "RS384", "RS512", "ES256", "ES384" };
		unsigned bit = 0;
		char ptr[64];

		for (unsigned a = 0; a < 5 && json_is_string(x); a++)
			if (strcmp(json_string_value(x), names[a]) == 0)
				bit = 1u << a;
		snprintf(ptr, sizeof(ptr), "/algorithms/%zu", i);
		if (!bit) {
			r = jsonpos_fail(s, ptr, "algorithm %s is not allowed: only RS256, RS384, RS512, ES256, ES384 (never none or HS*)",
				 json_is_string(x) ? json_string_value(x) : "(not a string)");
			goto out;
		}
		ti->algorithms |= bit;
	}

	ti->leeway = TOKEN_DEFAULT_LEEWAY;
	v = json_object_get(root, "leeway");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > TOKEN_MAX_LEEWAY) {
			r = jsonpos_fail(s, "/leeway", "\"leeway\" must be 0 to %d seconds", TOKEN_MAX_LEEWAY);
			goto out;
		}
		ti->leeway = (long)json_integer_value(v);
	}
	ti->max_bytes = TOKEN_DEFAULT_MAX_BYTES;
	v = json_object_get(root, "max_token_bytes");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1024 || json_integer_value(v) > 65536) {
			r = jsonpos_fail(s, "/max_token_bytes", "\"max_token_bytes\" must be 1024 to 65536");
			goto out;
		}
		ti->max_bytes = (size_t)json_integer_value(v);
	}

	v = json_object_get(root, "jwks_file");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		r = jsonpos_fail(s, v ? "/jwks_file" : "", "\"jwks_file\" must name the issuer's key set (relative to %s or absolute)", dir);
		goto out;
	}
	snprintf(jwks_path, sizeof(jwks_path), json_string_value(v)[0] == '/' ? "%s%s" : "%s/%s",
		 json_string_value(v)[0] == '/' ? "" : dir, json_string_value(v));
	if (jwks_text) {
		r = jwks_parse(jwks_text, jwks_len, &is->keys[slot], jerrbuf, sizeof(jerrbuf));
	} else {
		if ((r = read_text(src, jwks_path, &jtext, &jlen, JWKS_MAX_BYTES, s->err)) < 0)
			goto out;
		r = jwks_parse(jtext, jlen, &is->keys[slot], jerrbuf, sizeof(jerrbuf));
		free(jtext);
	}
	if (r < 0) {
		snprintf(s->err, ISSUERS_ERR_LEN, "%s: %s", jwks_path, jerrbuf);
		goto out;
	}
	ti->keys = &is->keys[slot];
out:
	json_decref(root);
	return r;
}

static int issuers_wanted(const char *name)
{
	size_t n = strlen(name);

	/* key sets sit beside the issuer files: *.jwks.json are not issuers */
	return name[0] != '.' && n > 5 && name[n - 1] != '~' && strcmp(name + n - 5, ".json") == 0 &&
	       !(n > 10 && strcmp(name + n - 10, ".jwks.json") == 0);
}

int issuers_load_dir_src(const char *dir, struct cfgsrc *src, struct issuers *ret, char *err)
{
	struct issuers is = { 0 };
	char **names = NULL;
	size_t n = 0;
	int r;

	r = cfgsrc_list(src, dir, issuers_wanted, &names, &n, err, ISSUERS_ERR_LEN);
	if (r == -ENOENT) {
		*ret = is;
		return 0;
	}
	if (r < 0)
		return r;
	if (n > ISSUERS_MAX) {
		snprintf(err, ISSUERS_ERR_LEN, "%s: %zu issuer files; at most %d are allowed", dir, n, ISSUERS_MAX);
		r = -E2BIG;
		goto out;
	}
	is.v = calloc(n + 1, sizeof(*is.v));
	is.keys = calloc(n + 1, sizeof(*is.keys));
	if (!is.v || !is.keys) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		char path[PATH_MAX], *text;
		size_t len;
		struct jsonpos_src s;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((r = read_text(src, path, &text, &len, 65536, err)) < 0)
			break;
		s = (struct jsonpos_src){ path, text, len, err };
		r = parse_one(&is, src, dir, &s, is.n, NULL, 0);
		free(text);
		if (r == 0)
			is.n++;
	}
out:
	cfgsrc_names_free(names, n);
	if (r < 0) {
		issuers_release(&is);
		return r;
	}
	*ret = is;
	return 0;
}

int issuers_load_dir(const char *dir, struct issuers *ret, char *err)
{
	return issuers_load_dir_src(dir, NULL, ret, err);
}

int issuers_parse(const char *name, const char *text, size_t len, const char *jwks_text, size_t jwks_len,
		  struct issuers *ret, char *err)
{
	struct issuers is = { 0 };
	struct jsonpos_src s = { name, text, len, err };
	int r;

	/* a slot more than used, as issuers_load_dir leaves: issuers_release frees it */
	is.v = calloc(2, sizeof(*is.v));
	is.keys = calloc(2, sizeof(*is.keys));
	if (!is.v || !is.keys) {
		issuers_release(&is);
		return -ENOMEM;
	}
	if ((r = parse_one(&is, NULL, "", &s, 0, jwks_text, jwks_len)) < 0) {
		issuers_release(&is);
		return r;
	}
	is.n = 1;
	*ret = is;
	return 0;
}

void issuers_release(struct issuers *is)
{
	for (size_t i = 0; is->keys && i <= is->n; i++)
		jwks_release(&is->keys[i]);
	for (size_t i = 0; i < is->n_strings; i++)
		free(is->strings[i]);
	free(is->strings);
	free(is->keys);
	free(is->v);
	memset(is, 0, sizeof(*is));
}
