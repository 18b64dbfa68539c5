/*
 * Session recordings (DESIGN.md "Recording"): one JSON-lines file per session, a
 * header (identity: kernel facts, verified claims, rule, upstream, role; never the
 * raw token), one record per event, and a seal when the session ends. Every record
 * carries "seq" and "prev", the SHA-256 (hex) of the previous line as written, so an
 * edited, deleted, reordered or inserted record breaks the chain; a record after the
 * seal, or a seal whose count disagrees, is reported too. A recording without a seal
 * (the daemon died) verifies up to its last record and is reported unsealed.
 */
#ifndef PGTETHER_RECORD_H
#define PGTETHER_RECORD_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define RECORD_ERR_LEN 512

struct record_writer {
	int fd;                      /* -1: closed */
	char path[PATH_MAX];
	char id[64];                 /* the session's recording id, also the file name */
	uint8_t prev[32];            /* SHA-256 of the last line */
	uint64_t seq;
	char *buf;                   /* lines not yet written */
	size_t len, cap;
	bool fsync_each;
	int error;                   /* the first write error (-errno), sticky */
};

/*
 * Creates dir/YYYY/MM/DD/<id>.jsonl (directories 0750, file 0640, never an existing
 * one) and writes the header record (header is taken). The id is the UTC start
 * second, the daemon's session number and a random part, so names sort in the order
 * sessions started. 0 or -errno with err.
 */
int record_open(struct record_writer *w, const char *dir, time_t started, uint64_t session, json_t *header,
		bool fsync_each, char *err);

/* The two halves of record_open, for a parent that creates the file and a worker
 * that writes it: record_create makes the file (w->fd, w->id, w->path); record_begin
 * writes the header into w->fd (header taken), closing it on failure. 0 or -errno
 * with err. */
int record_create(struct record_writer *w, const char *dir, time_t started, uint64_t session, bool fsync_each, char *err);
int record_begin(struct record_writer *w, json_t *header, char *err);

/* Buffers one record of type with fields (taken; NULL for none). 0 or -ENOMEM. */
int record_add(struct record_writer *w, const char *type, json_t *fields);

/* Writes what is buffered (and fsyncs when asked). 0 or the sticky -errno. */
int record_flush(struct record_writer *w);

/* Adds the seal (with fields, taken), flushes and closes. 0 or -errno. */
int record_seal(struct record_writer *w, json_t *fields);

/* Closes without a seal (what a crash leaves). */
void record_abandon(struct record_writer *w);

struct record_check {
	uint64_t records;            /* records that verify, header included */
	bool sealed;
	json_t *header;              /* the header record (a new reference), or NULL */
};

/*
 * Checks the chain of the recording at path. 0 when every record verifies (sealed
 * or not: see ret->sealed); -EBADMSG with err naming the first bad record ("record
 * 3 (line 4): ..."); another -errno when the file cannot be read.
 */
int record_verify(const char *path, struct record_check *ret, char *err);

#endif
