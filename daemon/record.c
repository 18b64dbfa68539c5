/*
 * Session recordings with a SHA-256 chain (see record.h).
 */
#include "record.h"
#include "b64url.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned n = 32;

	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}


static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0750) < 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	return mkdir(path, 0750) < 0 && errno != EEXIST ? -errno : 0;
}

int record_create(struct record_writer *w, const char *dir, time_t started, uint64_t session, bool fsync_each, char *err)
{
	char sub[PATH_MAX], stamp[32], rnd_hex[17];
	unsigned char rnd[8];
	struct tm tm;
	int r;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->fsync_each = fsync_each;
	gmtime_r(&started, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, RECORD_ERR_LEN, "no randomness for a recording id");
		return -EIO;
	}
	hex_encode(rnd, sizeof(rnd), rnd_hex);
	snprintf(w->id, sizeof(w->id), "%s-%06llu-%.8s", stamp, (unsigned long long)session, rnd_hex);
	snprintf(sub, sizeof(sub), "%s/%04d/%02d/%02d", dir, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	if ((r = mkdirs(sub)) < 0) {
		snprintf(err, RECORD_ERR_LEN, "cannot create %s: %s", sub, strerror(-r));
		return r;
	}
	snprintf(w->path, sizeof(w->path), "%s/%s.jsonl", sub, w->id);
	w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
	if (w->fd < 0) {
		r = -errno;
		snprintf(err, RECORD_ERR_LEN, "cannot create %s: %s", w->path, strerror(errno));
		return r;
	}
	return 0;
}

int record_begin(struct record_writer *w, json_t *header, char *err)
{
	int r;

	if (!header)
		header = json_object();
	json_object_set_new(header, "recording", json_string(w->id));
	if ((r = record_add(w, "header", header)) < 0 || (r = record_flush(w)) < 0) {
		snprintf(err, RECORD_ERR_LEN, "cannot write %s: %s", w->path, strerror(-r));
		close(w->fd);
		w->fd = -1;
		free(w->buf);
		w->buf = NULL;
		return r;
	}
	return 0;
}

int record_open(struct record_writer *w, const char *dir, time_t started, uint64_t session, json_t *header,
		bool fsync_each, char *err)
{
	int r = record_create(w, dir, started, session, fsync_each, err);

	if (r < 0) {
		json_decref(header);
		return r;
	}
	if ((r = record_begin(w, header, err)) < 0)
		unlink(w->path);
	return r;
}

int record_add(struct record_writer *w, const char *type, json_t *fields)
{
	char prev[65], *line;
	struct timespec ts;
	size_t n;

	if (!fields)
		fields = json_object();
	if (!fields)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &ts);
	hex_encode(w->prev, sizeof(w->prev), prev);
	json_object_set_new(fields, "seq", json_integer((json_int_t)w->seq));
	json_object_set_new(fields, "type", json_string(type));
	json_object_set_new(fields, "ts", json_real((double)ts.tv_sec + (double)ts.tv_nsec / 1e9));
	json_object_set_new(fields, "prev", json_string(prev));
	line = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(fields);
	if (!line)
		return -ENOMEM;
	n = strlen(line);
	if (w->len + n + 1 > w->cap) {
		size_t cap = (w->len + n + 1) * 2;
		char *b = realloc(w->buf, cap);

		if (!b) {
			free(line);
			return -ENOMEM;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, line, n);
	w->buf[w->len + n] = '\n';
	w->len += n + 1;
	sha256(line, n, w->prev);
	w->seq++;
	free(line);
	return 0;
}

int record_flush(struct record_writer *w)
{
	size_t off = 0;

	if (w->error)
		return w->error;
	if (w->fd < 0)
		return -EBADF;
	while (off < w->len) {
		ssize_t n = write(w->fd, w->buf + off, w->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* a partial line stays partial: verify reports it, nothing is lost silently */
			w->error = n < 0 ? -errno : -EIO;
			return w->error;
		}
		off += (size_t)n;
	}
	w->len = 0;
	if (w->fsync_each && fsync(w->fd) < 0) {
		w->error = -errno;
		return w->error;
	}
	return 0;
}

int record_seal(struct record_writer *w, json_t *fields)
{
	int r;

	if (w->fd < 0) {
		json_decref(fields);
		return -EBADF;
	}
	if (!fields)
		fields = json_object();
	json_object_set_new(fields, "records", json_integer((json_int_t)w->seq + 1));
	r = record_add(w, "seal", fields);
	if (r == 0)
		r = record_flush(w);
	if (r == 0 && fsync(w->fd) < 0)
		r = -errno;
	record_abandon(w);
	return r;
}

void record_abandon(struct record_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

int record_verify(const char *path, struct record_check *ret, char *err)
{
	FILE *f = fopen(path, "re");
	uint8_t prev[32] = { 0 };
	char *line = NULL, want[65];
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	if (!f) {
		r = -errno;
		snprintf(err, RECORD_ERR_LEN, "%s: %s", path, strerror(errno));
		return r;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *rec;
		const char *type, *p;
		uint64_t seq = ret->records;

		lineno++;
		if (ret->sealed) {
			snprintf(err, RECORD_ERR_LEN, "record %llu (line %llu): a record after the seal", (unsigned long long)seq,
				 (unsigned long long)lineno);
			r = -EBADMSG;
			break;
		}
		if (line[n - 1] != '\n') {
			snprintf(err, RECORD_ERR_LEN, "record %llu (line %llu): cut off (no end of line)", (unsigned long long)seq,
				 (unsigned long long)lineno);
			r = -EBADMSG;
			break;
		}
		line[--n] = '\0';
		rec = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
		type = json_string_value(json_object_get(rec, "type"));
		p = json_string_value(json_object_get(rec, "prev"));
		hex_encode(prev, sizeof(prev), want);
		if (!rec || !type) {
			snprintf(err, RECORD_ERR_LEN, "record %llu (line %llu): not a record", (unsigned long long)seq,
				 (unsigned long long)lineno);
			r = -EBADMSG;
		} else if (!json_is_integer(json_object_get(rec, "seq")) ||
			   (uint64_t)json_integer_value(json_object_get(rec, "seq")) != seq) {
			snprintf(err, RECORD_ERR_LEN, "record %llu (line %llu): out of sequence (seq %lld)", (unsigned long long)seq,
				 (unsigned long long)lineno, (long long)json_integer_value(json_object_get(rec, "seq")));
			r = -EBADMSG;
		} else if (!p || strcmp(p, want) != 0) {
			snprintf(err, RECORD_ERR_LEN, "record %llu (line %llu): the previous record was changed, removed or moved (hash chain broken)",
				 (unsigned long long)seq, (unsigned long long)lineno);
			r = -EBADMSG;
		} else if ((seq == 0) != (strcmp(type, "header") == 0)) {
			snprintf(err, RECORD_ERR_LEN, "record %llu (line %llu): %s", (unsigned long long)seq, (unsigned long long)lineno,
				 seq == 0 ? "the first record is not a header" : "a second header");
			r = -EBADMSG;
		} else if (strcmp(type, "seal") == 0 &&
			   json_integer_value(json_object_get(rec, "records")) != (json_int_t)seq + 1) {
			snprintf(err, RECORD_ERR_LEN, "record %llu (line %llu): the seal counts %lld records", (unsigned long long)seq,
				 (unsigned long long)lineno, (long long)json_integer_value(json_object_get(rec, "records")));
			r = -EBADMSG;
		}
		if (r == 0) {
			if (seq == 0)
				ret->header = json_incref(rec);
			ret->sealed = strcmp(type, "seal") == 0;
			ret->records++;
			sha256(line, (size_t)n, prev);
		}
		json_decref(rec);
		if (r < 0)
			break;
	}
	free(line);
	fclose(f);
	if (r == 0 && ret->records == 0) {
		snprintf(err, RECORD_ERR_LEN, "%s: empty", path);
		r = -EBADMSG;
	}
	return r;
}
