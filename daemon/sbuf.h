/*
 * A session's byte buffers and the sockets they move between, plain or TLS (PgBouncer's
 * sbuf is the model). Each session owns fixed buffers of SBUF_SIZE bytes allocated at
 * accept; a buffer grows only to hold one message whole (a long statement, a row that
 * masks made longer, a catalog answer), out of the daemon-wide memory_budget, and goes
 * back into its fixed part once that message has gone out. Nothing here parses the
 * bytes: that is the protocol modules' part.
 *
 * Contracts: data[off..ready) may be sent, data[ready..len) is held (a message not yet
 * whole, checked or masked); off <= ready <= len <= cap always.
 */
#ifndef PGTETHER_SBUF_H
#define PGTETHER_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "quota.h"
#include "tls.h"

#define SBUF_SIZE 65536             /* each fixed buffer; a startup packet fits (pgwire.h) */

/* Everything in the loop's epoll set starts with this, so one epoll_event.data.ptr
 * tells what woke up. */
enum ev_kind { EV_LISTENER, EV_CONTROL, EV_SIGNAL, EV_TIMER, EV_SESSION, EV_PROOFS, EV_FS, EV_WORKER, EV_COMMAND };

struct ev_source {
	enum ev_kind kind;
};

struct session;

/* One socket of a session: the client's or the upstream's. */
struct session_end {
	struct ev_source ev;        /* EV_SESSION */
	struct session *s;
	int fd;
	SSL *ssl;                   /* when this hop is TLS */
	uint32_t want;              /* what TLS last asked to wait for (EPOLLIN/OUT) */
	uint32_t events;            /* what is registered in epoll now */
};

struct session_buf {
	uint8_t *data;
	uint8_t *home;              /* its fixed SBUF_SIZE part; data points elsewhere while grown */
	size_t cap;                 /* SBUF_SIZE, more while it holds a long message */
	size_t off, ready, len;     /* data[off..ready) may be sent; [ready..len) is held */
	size_t tls_taken;           /* data[off..tls_taken) went into a TLS write that waits
	                             * for room: OpenSSL sent part and sends the rest as it was */
	bool eof;                   /* the reading side has closed */
	bool shut;                  /* and that EOF was passed on (shutdown SHUT_WR) */
};

/* What one owner's grown buffers hold of the daemon-wide memory_budget. */
struct sbuf_account {
	struct quota_mem *pool;     /* shared by every session */
	size_t held;                /* bytes of pool this owner holds */
	bool refused;               /* pool refused it more room at least once */
};

/* ---- epoll interest ---- */

/* Sets what end waits for, plus what TLS asked for (it may need the other direction
 * to make progress). Nothing is changed when it is already so or end has no fd; an
 * epoll_ctl that fails leaves the old interest (the fd is then being closed). */
void sbuf_set_events(int epfd, struct session_end *end, uint32_t events);

/* Adds end->fd to the epoll set. 0 or -errno. */
int sbuf_watch(int epfd, struct session_end *end, uint32_t events);

/* Closes end->fd (if any), taking it out of the epoll set first: the parent holds a
 * copy of client sockets, and a closed fd whose file lives on stays watched. Its TLS
 * object, if any, is the caller's. */
void sbuf_close(int epfd, struct session_end *end);

/* ---- I/O ---- */

/* One recv or SSL_read: bytes read, 0 at EOF, or -errno (-EAGAIN: end->want says
 * for what TLS waits). */
ssize_t sbuf_recv(struct session_end *e, void *buf, size_t len);

/* One send (MSG_NOSIGNAL) or SSL_write: bytes sent or -errno, as sbuf_recv. */
ssize_t sbuf_send(struct session_end *e, const void *buf, size_t len);

/* ---- buffers ---- */

/* Where the bytes that have not gone out start: off, or past it what a TLS write that
 * waits took (OpenSSL sends those, and a retry must not ask for fewer). Only what is
 * from here on may be taken back. */
size_t sbuf_sent(const struct session_buf *b);

/* Bytes that still fit after len. */
size_t sbuf_room(const struct session_buf *b);

/* Appends n bytes that are ready to send. The caller made sure they fit. */
void sbuf_put(struct session_buf *b, const void *data, size_t n);

/* Sends b[off..ready) to `to`; compacts the buffer when that part is drained
 * (*scan_pos, a position in b, moves with the bytes), and passes an EOF on once
 * everything went. 0 (also when the socket is full), or -errno of a broken socket. */
int sbuf_flush(struct session_buf *b, struct session_end *to, size_t *scan_pos);

/* Reads once from `from` into b, keeping `reserve` bytes free; *count (may be NULL)
 * adds what was read. Bytes read (0 on EAGAIN or EOF, b->eof set on EOF), or -errno. */
ssize_t sbuf_fill(struct session_buf *b, struct session_end *from, size_t reserve, uint64_t *count);

/* Takes n bytes of a->pool under budget. 0, or -ENOMEM (a->refused set). */
int sbuf_mem_take(struct sbuf_account *a, size_t budget, size_t n);

/* Gives back n bytes taken with sbuf_mem_take. */
void sbuf_mem_give(struct sbuf_account *a, size_t n);

/* Makes b able to hold `want` bytes, its contents kept (the old grown copy wiped and
 * freed). 0, or -ENOMEM: out of memory or of budget (a->refused), b unchanged. */
int sbuf_reserve(struct session_buf *b, struct sbuf_account *a, size_t budget, size_t want);

/*
 * A message of mlen bytes at start of b is held until it is whole. The bytes before
 * it go out and the buffer compacts meanwhile, so more room is needed only when the
 * message cannot fit at all, with `reserve` bytes kept free for reading (sbuf_fill):
 * nothing is allocated for messages of ordinary size. 0 or -ENOMEM.
 */
int sbuf_hold_room(struct session_buf *b, struct sbuf_account *a, size_t budget, size_t start, size_t mlen,
		   size_t reserve);

/* Back into the fixed part once what needed more room has gone out: not while part
 * of a message is held, which is what the room was made for. */
void sbuf_shrink(struct session_buf *b, struct sbuf_account *a);

/* Frees a grown allocation (the fixed part is the owner's); the account is settled
 * by the owner as a whole (sbuf_account.held). */
void sbuf_release(struct session_buf *b);

#endif
