/*
 * One redirected connection, from accept() to close. Reading session.c top to bottom
 * tells its story: look up the origin the kernel recorded, confirm the peer socket
 * with sock_diag, read the kernel facts of the process, connect upstream to where the
 * workload wanted to go (with the loop-guard mark), then relay bytes both ways.
 *
 * A connection that cannot go on is refused the way PostgreSQL refuses one: the
 * client's SSLRequest/GSSENCRequest gets 'N', its StartupMessage a FATAL
 * ErrorResponse with a SQLSTATE and a message a developer can act on.
 *
 * Sessions live on one epoll loop. Each owns two fixed relay buffers allocated at
 * accept; nothing is allocated per read.
 */
#ifndef PGTETHER_SESSION_H
#define PGTETHER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "attest.h"
#include "intercept.h"

#define SESSION_BUF 65536
#define SESSION_CONNECT_TIMEOUT_S 10
#define SESSION_REFUSE_TIMEOUT_S 10

struct config;
struct sockdiag;

/* Everything in the loop's epoll set starts with this, so one epoll_event.data.ptr
 * tells what woke up. */
enum ev_kind { EV_LISTENER, EV_CONTROL, EV_SIGNAL, EV_TIMER, EV_SESSION };

struct ev_source {
	enum ev_kind kind;
};

struct session;

struct session_end {
	struct ev_source ev;        /* EV_SESSION */
	struct session *s;
	int fd;
	uint32_t events;            /* what is registered in epoll now */
};

struct session_buf {
	uint8_t *data;
	size_t off, len;            /* pending bytes are data[off..len) */
	bool eof;                   /* the reading side has closed */
	bool shut;                  /* and that EOF was passed on (shutdown SHUT_WR) */
};

enum session_state { SESSION_CONNECTING, SESSION_RELAYING, SESSION_REFUSING };

struct session {
	uint64_t id;
	enum session_state state;
	struct session_end client, upstream;
	struct session_buf c2u, u2c;     /* in REFUSING, u2c holds what goes to the client */
	struct pgt_origin origin;
	struct attest_facts facts;
	struct addr peer, dst, up_local;
	uint64_t bytes_c2u, bytes_u2c;
	struct timespec started;         /* CLOCK_MONOTONIC */
	time_t started_wall;
	char refuse_sqlstate[6];
	char refuse_msg[256];
	const char *closed_by;           /* which side closed first */
	bool dead;                       /* closed, waiting for session_reap() */
	struct session *prev, *next;
};

struct session_env {
	struct intercept *ic;
	struct sockdiag *sd;
	const struct config *cfg;
	int epfd;
	uint64_t next_id;
	struct session *head;            /* live sessions */
	struct session *dead;            /* closed, freed by session_reap() */
	size_t n_live;
};

/* Accepts every pending connection on the listener. */
void session_accept(struct session_env *env, int lfd);

/* Handles epoll events for one end of a session (may free the session). */
void session_event(struct session_env *env, struct session_end *end, uint32_t events);

/* Frees the sessions closed since the last call; call after each epoll batch. */
void session_reap(struct session_env *env);

/* Once a second: times out upstream connects and refusals. */
void session_tick(struct session_env *env);

/* Closes every session (daemon shutdown), logging each with the reason. */
void session_close_all(struct session_env *env, const char *reason);

#endif
