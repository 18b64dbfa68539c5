/*
 * OpenSSL glue for tls.h. Only TLS 1.2 and 1.3; verification per the upstream's mode.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "cfgsrc.h"

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

/* A PEM file through src (links followed, as OpenSSL's *_file functions do) into a
 * memory BIO over the text, which tls_free_pem wipes and frees. On failure err is
 * "what: reason". */
static BIO *tls_read_pem(struct cfgsrc *src, const char *path, const char *what, char **ret_text, size_t *ret_len,
			 char *err)
{
	char rerr[TLS_ERR_LEN];
	const char *why = rerr;
	struct stat st;
	size_t len, pl = strlen(path);
	char *text;
	BIO *bio;

	if (cfgsrc_read_follow(src, path, TLS_MAX_PEM_BYTES, &text, &len, &st, rerr, sizeof(rerr)) < 0) {
		/* the reason without the path that what names already */
		if (strncmp(rerr, path, pl) == 0 && strncmp(rerr + pl, ": ", 2) == 0)
			why = rerr + pl + 2;
		snprintf(err, TLS_ERR_LEN, "%s: %s", what, why);
		return NULL;
	}
	bio = BIO_new_mem_buf(text, (int)len);
	if (!bio) {
		explicit_bzero(text, len);
		free(text);
		ssl_error(err, TLS_ERR_LEN, what);
		return NULL;
	}
	*ret_text = text;
	*ret_len = len;
	return bio;
}

static void tls_free_pem(BIO *bio, char *text, size_t len)
{
	BIO_free(bio);
	explicit_bzero(text, len);
	free(text);
}

/* True when the last error is PEM's "no start line" at the end of the input: a PEM
 * reader's way of saying there is nothing more, not a failure. */
static bool tls_pem_end(void)
{
	unsigned long e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* Every certificate and CRL of a CA bundle into ctx's store, as
 * SSL_CTX_load_verify_locations(ctx, file, NULL) takes them. 1 or 0. */
static int tls_load_ca(SSL_CTX *ctx, BIO *bio)
{
	STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	int loaded = 0, ok = 1;

	if (!infos)
		return 0;
	for (int i = 0; i < sk_X509_INFO_num(infos) && ok; i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);

		if (info->x509) {
			ok = X509_STORE_add_cert(store, info->x509);
			loaded++;
		}
		if (info->crl && ok) {
			ok = X509_STORE_add_crl(store, info->crl);
			loaded++;
		}
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (ok && loaded == 0)
		ERR_raise_data(ERR_LIB_X509, X509_R_NO_CERTIFICATE_OR_CRL_FOUND, NULL);
	return ok && loaded > 0;
}

/* A certificate chain, leaf first, into ctx, as SSL_CTX_use_certificate_chain_file
 * takes it. 1 or 0. */
static int tls_load_chain(SSL_CTX *ctx, BIO *bio)
{
	pem_password_cb *cb = SSL_CTX_get_default_passwd_cb(ctx);
	void *u = SSL_CTX_get_default_passwd_cb_userdata(ctx);
	X509 *x;
	int ok;

	ERR_clear_error(); /* ERR_peek_error below must see SSL_CTX_use_certificate's alone */
	if (!(x = PEM_read_bio_X509_AUX(bio, NULL, cb, u)))
		return 0;
	ok = SSL_CTX_use_certificate(ctx, x) == 1 && ERR_peek_error() == 0 && SSL_CTX_clear_chain_certs(ctx) == 1;
	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(bio, NULL, cb, u))) {
		ok = SSL_CTX_add1_chain_cert(ctx, x) == 1;
		X509_free(x);
	}
	if (ok && !tls_pem_end())
		ok = 0; /* a block that is not a certificate */
	if (ok)
		ERR_clear_error();
	return ok;
}

static int tls_load_key(SSL_CTX *ctx, BIO *bio)
{
	EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, SSL_CTX_get_default_passwd_cb(ctx),
						SSL_CTX_get_default_passwd_cb_userdata(ctx));
	int ok;

	if (!key)
		return 0;
	ok = SSL_CTX_use_PrivateKey(ctx, key) == 1;
	EVP_PKEY_free(key);
	return ok;
}

/* The system's CA store for an upstream without ca_file, in a way a worker can
 * replay: the bundle file OpenSSL would load (SSL_CERT_FILE or its default), read
 * through src. NULL src: OpenSSL's own default paths, as before sources. */
static int tls_system_ca(SSL_CTX *ctx, struct cfgsrc *src, const struct config_upstream *u, char *err)
{
	const char *file = getenv(X509_get_default_cert_file_env());
	char what[600], *text;
	size_t len;
	BIO *bio;
	int ok;

	if (!src) {
		if (SSL_CTX_set_default_verify_paths(ctx))
			return 0;
		snprintf(what, sizeof(what), "upstream '%s': cannot load CA (system store)", u->name);
		ssl_error(err, TLS_ERR_LEN, what);
		return -EINVAL;
	}
	if (!file || !*file)
		file = X509_get_default_cert_file();
	snprintf(what, sizeof(what), "upstream '%s': cannot load CA (system store) %s", u->name, file);
	if (!(bio = tls_read_pem(src, file, what, &text, &len, err)))
		return -EINVAL;
	ok = tls_load_ca(ctx, bio);
	tls_free_pem(bio, text, len);
	if (!ok) {
		ssl_error(err, TLS_ERR_LEN, what);
		return -EINVAL;
	}
	return 0;
}

static int tls_prepare_upstream(struct config_upstream *u, struct cfgsrc *src, char *err)
{
	char what[600], *text;
	size_t len;
	SSL_CTX *ctx;
	BIO *bio;
	int ok;

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		ssl_error(err, TLS_ERR_LEN, "cannot create a TLS context");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* a peer closing without close_notify is an EOF, as for plain TCP */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* a write that waited is tried again from where the buffer is now: it grows and
	 * goes back into its fixed part with the bytes (sbuf_reserve, sbuf_shrink) */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (u->tls == CONFIG_TLS_VERIFY_FULL) {
		if (!u->ca_file) {
			if (tls_system_ca(ctx, src, u, err) < 0) {
				SSL_CTX_free(ctx);
				return -EINVAL;
			}
		} else {
			snprintf(what, sizeof(what), "upstream '%s': cannot load CA %s", u->name, u->ca_file);
			if (!(bio = tls_read_pem(src, u->ca_file, what, &text, &len, err))) {
				SSL_CTX_free(ctx);
				return -EINVAL;
			}
			ok = tls_load_ca(ctx, bio);
			tls_free_pem(bio, text, len);
			if (!ok) {
				ssl_error(err, TLS_ERR_LEN, what);
				SSL_CTX_free(ctx);
				return -EINVAL;
			}
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* "require": encrypted, like libpq's sslmode=require, unverified */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	u->ssl_ctx = ctx;
	return 0;
}

static int tls_prepare_client(struct config *c, struct cfgsrc *src, char *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char what[600], *text;
	size_t len;
	BIO *bio;
	int ok;

	if (!ctx) {
		ssl_error(err, TLS_ERR_LEN, "cannot create a TLS context");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); /* as upstream's */
	snprintf(what, sizeof(what), "client_tls: cannot load certificate %s", c->client_tls_cert);
	if (!(bio = tls_read_pem(src, c->client_tls_cert, what, &text, &len, err))) {
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	ok = tls_load_chain(ctx, bio);
	tls_free_pem(bio, text, len);
	if (!ok) {
		ssl_error(err, TLS_ERR_LEN, what);
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "client_tls: cannot load key %s (or it does not match the certificate)", c->client_tls_key);
	if (!(bio = tls_read_pem(src, c->client_tls_key, what, &text, &len, err))) {
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	ok = tls_load_key(ctx, bio) && SSL_CTX_check_private_key(ctx) == 1;
	tls_free_pem(bio, text, len);
	if (!ok) {
		ssl_error(err, TLS_ERR_LEN, what);
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	c->client_ssl_ctx = ctx;
	return 0;
}

int tls_prepare_src(struct config *c, struct cfgsrc *src, char *err)
{
	int r;

	for (size_t i = 0; i < c->n_upstreams; i++)
		if (c->upstreams[i].tls != CONFIG_TLS_DISABLE && (r = tls_prepare_upstream(&c->upstreams[i], src, err)) < 0)
			return r;
	if (c->client_tls_cert && (r = tls_prepare_client(c, src, err)) < 0)
		return r;
	return 0;
}

int tls_prepare(struct config *c, char *err)
{
	return tls_prepare_src(c, NULL, err);
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
