/*
 * logfmt lines on stderr. Each line is built in a stack buffer and written with one
 * write(2): a daemon under systemd or a test harness reading the stream never sees
 * half a line, and nothing is allocated per event.
 */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_min = LOG_LEVEL_INFO;
static FILE *log_out;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_level min, FILE *out)
{
	log_min = min;
	log_out = out;
}

static void put(struct logline *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - 16 - l->len; /* room for the truncation mark and "\n" */

	if (n > room) {
		n = room;
		l->truncated = 1;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

void log_begin(struct logline *l, enum log_level level, const char *event)
{
	struct timespec ts;
	struct tm tm;
	char stamp[64];
	int n;

	l->len = 0;
	l->truncated = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(stamp + n, sizeof(stamp) - (size_t)n, ".%03ldZ", ts.tv_nsec / 1000000);
	put(l, "ts=", 3);
	put(l, stamp, (size_t)n);
	log_str(l, "level", level_names[level]);
	log_str(l, "event", event);
}

void log_str(struct logline *l, const char *key, const char *value)
{
	const char *p;
	int quote = 0;

	if (!value)
		value = "";
	if (!*value)
		quote = 1;
	for (p = value; *p; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
			quote = 1;
	put(l, " ", 1);
	put(l, key, strlen(key));
	put(l, "=", 1);
	if (!quote) {
		put(l, value, strlen(value));
		return;
	}
	put(l, "\"", 1);
	for (p = value; *p; p++) {
		char esc[8];

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = *p;
			put(l, esc, 2);
		} else if ((unsigned char)*p < 0x20) {
			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)*p);
			put(l, esc, 4);
		} else {
			put(l, p, 1);
		}
	}
	put(l, "\"", 1);
}

void log_u64(struct logline *l, const char *key, unsigned long long value)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", value);
	log_str(l, key, num);
}

void log_i64(struct logline *l, const char *key, long long value)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", value);
	log_str(l, key, num);
}

void log_end(struct logline *l, enum log_level level)
{
	FILE *out = log_out ? log_out : stderr;
	ssize_t ignored;

	if (level < log_min)
		return;
	if (l->truncated) {
		memcpy(l->buf + l->len, " truncated=1", 12);
		l->len += 12;
	}
	l->buf[l->len++] = '\n';
	fflush(out);
	ignored = write(fileno(out), l->buf, l->len);
	(void)ignored;
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	struct logline l;
	char msg[1024];
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_begin(&l, level, event);
	log_str(&l, "msg", msg);
	log_end(&l, level);
}
