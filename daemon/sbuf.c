/*
 * Session buffers and I/O, plain or TLS: see sbuf.h. Moved out of session.c as it
 * was (issue 13); the session decides what goes into the buffers and when.
 */
#include "sbuf.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sys/socket.h>

/* ---- epoll interest ---------------------------------------------------------- */

void sbuf_set_events(int epfd, struct session_end *end, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &end->ev };

	events |= end->want; /* TLS may need the other direction to make progress */
	ev.events = events;
	if (end->fd < 0 || end->events == events)
		return;
	epoll_ctl(epfd, EPOLL_CTL_MOD, end->fd, &ev);
	end->events = events;
}

int sbuf_watch(int epfd, struct session_end *end, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &end->ev };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, end->fd, &ev) == -1)
		return -errno;
	end->events = events;
	return 0;
}

void sbuf_close(int epfd, struct session_end *end)
{
	if (end->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, end->fd, NULL);
		close(end->fd);
	}
	end->fd = -1;
	end->events = 0;
}

/* ---- I/O: plain or TLS ---------------------------------------------------------- */

ssize_t sbuf_recv(struct session_end *e, void *buf, size_t len)
{
	ssize_t n;

	if (e->ssl) {
		unsigned want = 0;

		n = tls_read(e->ssl, buf, len, &want);
		e->want = n == -EAGAIN ? want : 0;
		return n;
	}
	n = recv(e->fd, buf, len, 0);
	return n >= 0 ? n : -errno;
}

ssize_t sbuf_send(struct session_end *e, const void *buf, size_t len)
{
	ssize_t n;

	if (e->ssl) {
		unsigned want = 0;

		n = tls_write(e->ssl, buf, len, &want);
		e->want = n == -EAGAIN ? want : 0;
		return n;
	}
	n = send(e->fd, buf, len, MSG_NOSIGNAL);
	return n >= 0 ? n : -errno;
}

/* ---- buffers ----------------------------------------------------------------- */

size_t sbuf_sent(const struct session_buf *b)
{
	return b->tls_taken > b->off ? b->tls_taken : b->off;
}

size_t sbuf_room(const struct session_buf *b)
{
	return b->cap - b->len;
}

void sbuf_put(struct session_buf *b, const void *data, size_t n)
{
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->ready = b->len;
}

int sbuf_flush(struct session_buf *b, struct session_end *to, size_t *scan_pos)
{
	while (b->off < b->ready) {
		ssize_t n = sbuf_send(to, b->data + b->off, b->ready - b->off);

		if (n < 0) {
			if (n == -EINTR)
				continue;
			if (n == -EAGAIN) {
				if (to->ssl && b->tls_taken < b->ready)
					b->tls_taken = b->ready; /* what this write was asked for */
				return 0;
			}
			return (int)n;
		}
		b->off += (size_t)n;
	}
	b->tls_taken = 0; /* all of it went */
	if (b->off) {
		/* held bytes (an incomplete header) move to the front */
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->ready -= b->off;
		if (scan_pos)
			*scan_pos -= b->off;
		b->off = 0;
	}
	if (b->eof && !b->shut && b->len == 0) {
		if (to->ssl)
			tls_shutdown(to->ssl);
		shutdown(to->fd, SHUT_WR);
		b->shut = true;
	}
	return 0;
}

ssize_t sbuf_fill(struct session_buf *b, struct session_end *from, size_t reserve, uint64_t *count)
{
	ssize_t n;

	if (b->eof || sbuf_room(b) <= reserve)
		return 0;
	n = sbuf_recv(from, b->data + b->len, sbuf_room(b) - reserve);
	if (n > 0) {
		b->len += (size_t)n;
		if (count)
			*count += (uint64_t)n;
		return n;
	}
	if (n == 0) {
		b->eof = true;
		return 0;
	}
	return n == -EAGAIN || n == -EINTR ? 0 : n;
}

/*
 * Memory beyond a session's fixed buffers comes out of the daemon-wide memory_budget,
 * so one workload holding huge statements or rows cannot starve the others: the
 * session that asks for more than is left is the one refused (53200), and what it
 * held goes back when its buffers shrink or it ends.
 */
int sbuf_mem_take(struct sbuf_account *a, size_t budget, size_t n)
{
	if (quota_mem_take(a->pool, n, budget) < 0) {
		a->refused = true;
		return -ENOMEM;
	}
	a->held += n;
	return 0;
}

void sbuf_mem_give(struct sbuf_account *a, size_t n)
{
	quota_mem_give(a->pool, n);
	a->held -= n;
}

int sbuf_reserve(struct session_buf *b, struct sbuf_account *a, size_t budget, size_t want)
{
	/* a grown buffer replaces an earlier grown one; the fixed one stays allocated */
	size_t more = b->data != b->home ? want - b->cap : want;
	uint8_t *d;

	if (want <= b->cap)
		return 0;
	if (sbuf_mem_take(a, budget, more) < 0)
		return -ENOMEM;
	d = malloc(want);
	if (!d) {
		sbuf_mem_give(a, more);
		return -ENOMEM;
	}
	memcpy(d, b->data, b->len);
	OPENSSL_cleanse(b->data, b->cap);
	if (b->data != b->home)
		free(b->data);
	b->data = d;
	b->cap = want;
	return 0;
}

int sbuf_hold_room(struct session_buf *b, struct sbuf_account *a, size_t budget, size_t start, size_t mlen,
		   size_t reserve)
{
	if (mlen + reserve < b->cap)
		return 0;
	return sbuf_reserve(b, a, budget, start + mlen + reserve + 1);
}

void sbuf_shrink(struct session_buf *b, struct sbuf_account *a)
{
	if (b->data == b->home || b->len > SBUF_SIZE || b->len > b->ready)
		return;
	memcpy(b->home, b->data, b->len);
	free(b->data);
	sbuf_mem_give(a, b->cap);
	b->data = b->home;
	b->cap = SBUF_SIZE;
}

void sbuf_release(struct session_buf *b)
{
	if (b->data != b->home)
		free(b->data);
	b->data = b->home;
}
