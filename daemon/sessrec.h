/*
 * The recording adapter of a session (sessrec.c): opens its recording once the
 * identity is decided, records statements, binds, result rows and what the server
 * said, and seals it at close. Private to the session's modules (session_int.h).
 * A recording that cannot be written stops what is being recorded
 * (recording_fail_mode closed) or is abandoned and the session goes on (open).
 */
#ifndef PGTETHER_SESSREC_H
#define PGTETHER_SESSREC_H

#include "session_int.h"

/* Opens the session's recording once its identity is decided. 0, or -1 when the
 * session must be refused (why says why; recording_fail_mode closed). */
int sessrec_open(struct session_env *env, struct session *s, int fd, const char *id, const char *path, char *why,
		 size_t cap);

/* Records one event, flushed when flush. 0, or -errno when it cannot be written and
 * that must stop what is being recorded. fields is taken. */
int sessrec_event(struct session_env *env, struct session *s, const char *type, json_t *fields, bool flush);

/* Writes the closing event (bytes, duration, reason) and frees the recording. */
void sessrec_seal(struct session *s);

/* Records a Query, Parse or Bind ('Q', 'P', 'B') and its verdict, flushed at once;
 * an allowed statement starts the count of result rows its rule records. 0 or -errno. */
int sessrec_statement(struct session_env *env, struct session *s, uint8_t type, const char *sql, size_t len,
		      enum policy_verdict v, const char *sqlstate, const char *msg);

/* Records a whole CommandComplete, ErrorResponse or NoticeResponse m[0..mlen), with
 * the time since the statement. */
void sessrec_server_message(struct session_env *env, struct session *s, const uint8_t *m, size_t mlen);

/* Records the parameters of a whole Bind body (masked when its statement names a
 * masked table, or is not known). */
void sessrec_bind(struct session_env *env, struct session *s, const struct policy_rule *masking, const uint8_t *body,
		  size_t blen);

/* Records a whole DataRow m[0..mlen) as the last RowDescription reads it. */
void sessrec_row(struct session_env *env, struct session *s, const uint8_t *m, size_t mlen);

#endif
