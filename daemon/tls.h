/*
 * TLS for both hops, with OpenSSL 3: pgtetherd as a TLS client of upstreams
 * (tls "require": encrypted; "verify-full": the certificate must chain to ca_file, or
 * the system's store, and name the host), and as a TLS server for clients when
 * client_tls gives a certificate (after an SSLRequest, or directly as PostgreSQL 17's
 * sslnegotiation=direct does, which requires ALPN "postgresql").
 *
 * Contexts are built from a loaded configuration and hang off it; SSL objects keep a
 * reference to their context, so a reload that frees the old contexts leaves live
 * sessions working.
 */
#ifndef PGTETHER_TLS_H
#define PGTETHER_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

typedef struct ssl_st SSL;

#define TLS_ERR_LEN 512

/* Builds the SSL_CTXs the configuration asks for (each upstream with tls, and
 * client_tls). 0, or -errno with a sentence in err ("client_tls: cannot load
 * certificate /etc/...: ..."). */
int tls_prepare(struct config *c, char *err);

/* The same reading the PEM files (client_tls cert and key, each upstream's ca_file)
 * through a configuration source (cfgsrc.h): a worker builds the contexts the
 * parent built from the same bytes. With a source, an upstream with verify-full and
 * no ca_file trusts the system's CA bundle file (SSL_CERT_FILE, or OpenSSL's default
 * cert.pem), read through it too: a worker cannot open it, nor a hashed CA directory.
 * src NULL is tls_prepare. */
#define TLS_MAX_PEM_BYTES (8u << 20)    /* a system CA bundle is a few hundred KiB */
struct cfgsrc;
int tls_prepare_src(struct config *c, struct cfgsrc *src, char *err);

/* Frees the contexts tls_prepare() built. */
void tls_release(struct config *c);

/* A new client-side SSL for upstream u on fd, with SNI and host verification as its
 * tls mode says. NULL on failure. */
SSL *tls_upstream_new(const struct config_upstream *u, int fd);

/* Points ssl, before its handshake, at another socket: the connect to one of the
 * upstream's addresses failed and the next one is tried. 0 or -ENOMEM. */
int tls_set_fd(SSL *ssl, int fd);

/* A new server-side SSL for a client on fd; direct: ALPN "postgresql" required. */
SSL *tls_client_new(const struct config *c, int fd, int direct);

/*
 * Advances a handshake. 1 done, 0 in progress (*want is EPOLLIN or EPOLLOUT), or
 * -1 failed with the reason in err.
 */
int tls_handshake(SSL *ssl, unsigned *want, char *err, size_t errlen);

/* SSL_read/SSL_write with the conventions of recv/send: bytes, 0 at EOF (read),
 * -EAGAIN to wait (*want says for what), or another negative errno. */
ssize_t tls_read(SSL *ssl, void *buf, size_t len, unsigned *want);
ssize_t tls_write(SSL *ssl, const void *buf, size_t len, unsigned *want);

/* Bytes already decrypted and waiting in the SSL object. */
int tls_pending(SSL *ssl);

/* Sends close_notify (best effort): the TLS way of saying no more data follows. */
void tls_shutdown(SSL *ssl);

/* True when the handshake agreed on ALPN "postgresql". */
int tls_alpn_is_postgresql(SSL *ssl);

/* close_notify, best effort, then frees. NULL is fine. */
void tls_free(SSL *ssl);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for logs. */
const char *tls_describe(SSL *ssl, char *buf, size_t len);

#endif
