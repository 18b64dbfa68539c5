/*
 * OpenSSL glue for tls.h. Only TLS 1.2 and 1.3; verification per the upstream's mode.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

static const unsigned char alpn_postgresql[] = "\x0apostgresql";

static void ssl_error(char *err, size_t len, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, len, "%s: %s", what, e ? buf : "unknown error");
	ERR_clear_error();
}

/* ALPN for clients that offer it: only "postgresql" (PostgreSQL 17's rule). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_postgresql,
				  sizeof(alpn_postgresql) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

int tls_prepare(struct config *c, char *err)
{
	char what[600];

	for (size_t i = 0; i < c->n_upstreams; i++) {
		struct config_upstream *u = &c->upstreams[i];
		SSL_CTX *ctx;

		if (u->tls == CONFIG_TLS_DISABLE)
			continue;
		ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx) {
			ssl_error(err, TLS_ERR_LEN, "cannot create a TLS context");
			return -ENOMEM;
		}
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		/* a peer closing without close_notify is an EOF, as for plain TCP */
		SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
		if (u->tls == CONFIG_TLS_VERIFY_FULL) {
			int ok = u->ca_file ? SSL_CTX_load_verify_locations(ctx, u->ca_file, NULL)
					    : SSL_CTX_set_default_verify_paths(ctx);

			if (!ok) {
				snprintf(what, sizeof(what), "upstream '%s': cannot load CA %s", u->name,
					 u->ca_file ? u->ca_file : "(system store)");
				ssl_error(err, TLS_ERR_LEN, what);
				SSL_CTX_free(ctx);
				return -EINVAL;
			}
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		} else {
			/* "require": encrypted, like libpq's sslmode=require, unverified */
			SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		}
		u->ssl_ctx = ctx;
	}
	if (c->client_tls_cert) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

		if (!ctx) {
			ssl_error(err, TLS_ERR_LEN, "cannot create a TLS context");
			return -ENOMEM;
		}
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
		if (SSL_CTX_use_certificate_chain_file(ctx, c->client_tls_cert) != 1) {
			snprintf(what, sizeof(what), "client_tls: cannot load certificate %s", c->client_tls_cert);
			ssl_error(err, TLS_ERR_LEN, what);
			SSL_CTX_free(ctx);
			return -EINVAL;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, c->client_tls_key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(what, sizeof(what), "client_tls: cannot load key %s (or it does not match the certificate)", c->client_tls_key);
			ssl_error(err, TLS_ERR_LEN, what);
			SSL_CTX_free(ctx);
			return -EINVAL;
		}
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
		c->client_ssl_ctx = ctx;
	}
	return 0;
}

void tls_release(struct config *c)
{
	for (size_t i = 0; i < c->n_upstreams; i++) {
		SSL_CTX_free(c->upstreams[i].ssl_ctx);
		c->upstreams[i].ssl_ctx = NULL;
	}
	SSL_CTX_free(c->client_ssl_ctx);
	c->client_ssl_ctx = NULL;
}

SSL *tls_upstream_new(const struct config_upstream *u, int fd)
{
	SSL *ssl = SSL_new(u->ssl_ctx);
	unsigned char ip[16];

	if (!ssl)
		return NULL;
	SSL_set_fd(ssl, fd);
	SSL_set_connect_state(ssl);
	SSL_set_alpn_protos(ssl, alpn_postgresql, sizeof(alpn_postgresql) - 1);
	if (u->named)
		SSL_set_tlsext_host_name(ssl, u->host);
	if (u->tls == CONFIG_TLS_VERIFY_FULL) {
		int ok;

		if (u->named)
			ok = SSL_set1_host(ssl, u->host);
		else
			ok = inet_pton(strchr(u->host, ':') ? AF_INET6 : AF_INET, u->host, ip) == 1 &&
			     X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host);
		if (!ok) {
			SSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}

int tls_set_fd(SSL *ssl, int fd)
{
	return SSL_set_fd(ssl, fd) == 1 ? 0 : -ENOMEM;
}

SSL *tls_client_new(const struct config *c, int fd, int direct)
{
	SSL *ssl = SSL_new(c->client_ssl_ctx);

	(void)direct; /* ALPN is checked after the handshake, see session.c */
	if (!ssl)
		return NULL;
	SSL_set_fd(ssl, fd);
	SSL_set_accept_state(ssl);
	return ssl;
}

int tls_handshake(SSL *ssl, unsigned *want, char *err, size_t errlen)
{
	int r = SSL_do_handshake(ssl);
	long v;

	if (r == 1)
		return 1;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		return 0;
	default:
		v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK)
			snprintf(err, errlen, "certificate verify failed: %s", X509_verify_cert_error_string(v));
		else
			ssl_error(err, errlen, "TLS handshake failed");
		return -1;
	}
}

/* The result of an SSL_read/SSL_write that returned n, in recv/send terms; reading
 * says whether a clean EOF is possible (writes have none). */
static ssize_t io_result(SSL *ssl, int n, int reading, unsigned *want)
{
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		if (reading)
			return 0;
		break;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		/* EOF without close_notify: an EOF all the same when reading */
		return errno ? -errno : (reading ? 0 : -EPIPE);
	default:
		break;
	}
	ERR_clear_error();
	return reading ? -EPROTO : -EPIPE;
}

ssize_t tls_read(SSL *ssl, void *buf, size_t len, unsigned *want)
{
	int n;

	errno = 0; /* SSL_ERROR_SYSCALL reports through errno: no stale value */
	n = SSL_read(ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
	return n > 0 ? n : io_result(ssl, n, 1, want);
}

ssize_t tls_write(SSL *ssl, const void *buf, size_t len, unsigned *want)
{
	int n;

	errno = 0;
	n = SSL_write(ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
	return n > 0 ? n : io_result(ssl, n, 0, want);
}

int tls_pending(SSL *ssl)
{
	return ssl ? SSL_pending(ssl) : 0;
}

void tls_shutdown(SSL *ssl)
{
	SSL_shutdown(ssl);
	ERR_clear_error();
}

int tls_alpn_is_postgresql(SSL *ssl)
{
	const unsigned char *p;
	unsigned int n;

	SSL_get0_alpn_selected(ssl, &p, &n);
	return n == sizeof(alpn_postgresql) - 2 && memcmp(p, alpn_postgresql + 1, n) == 0;
}

void tls_free(SSL *ssl)
{
	if (!ssl)
		return;
	SSL_shutdown(ssl);
	ERR_clear_error();
	SSL_free(ssl);
}

const char *tls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	return buf;
}
