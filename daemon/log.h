/*
 * Structured logging to stderr, one logfmt line per event:
 *   ts=2026-11-27T23:40:01.123Z level=info event=conn.open pid=4242 exe=/usr/bin/psql
 * Values with spaces, quotes or '=' are quoted. The log target is the one global the
 * style allows; the daemon logs at the layer that decides, so modules below return
 * errors and do not call these.
 */
#ifndef PGTETHER_LOG_H
#define PGTETHER_LOG_H

#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

struct logline {
	char buf[2048];
	size_t len;
	int truncated;
};

/* Sets the minimum level printed and the stream (default: info, stderr). */
void log_setup(enum log_level min, FILE *out);

/* Starts a line with ts, level and event. */
void log_begin(struct logline *l, enum log_level level, const char *event);
/* Appends key=value, quoting the value when it needs it; NULL values print as "". */
void log_str(struct logline *l, const char *key, const char *value);
void log_u64(struct logline *l, const char *key, unsigned long long value);
void log_i64(struct logline *l, const char *key, long long value);
/* Writes the line (one write(2), so lines from several processes never interleave). */
void log_end(struct logline *l, enum log_level level);

/* One-liners for plain messages: level, event and a printf-formatted msg= value. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_info(ev, ...)  log_msg(LOG_LEVEL_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_msg(LOG_LEVEL_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_msg(LOG_LEVEL_ERROR, ev, __VA_ARGS__)

#endif
