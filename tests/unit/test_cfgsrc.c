/* Unit tests for daemon/cfgsrc.c: a configuration load recorded from a directory
 * tree, sealed into a memfd and replayed as a worker (config_load_src with
 * CONFIG_LOAD_WORKER, tls_prepare_src) ends with the same snapshot, without a
 * password; a bundle that is cut or lies about its lengths is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgsrc.h"
#include "config.h"
#include "tls.h"

static char tree[64];
static const char *const passwords[] = { "s3cret-pass-A", "s3cret-pass-B", "s3cret-pass-C", "s3cret-pass-D" };

static void put(const char *rel, const char *text, mode_t mode)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tree, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* The tree: pgtether.json, credentials, two policy files (and two that are skipped),
 * an issuer with its key set, the mask key, a CA and a server certificate chain. */
static int setup(void **state)
{
	char text[4096];

	(void)state;
	snprintf(tree, sizeof(tree), "/tmp/pgtether-test-cfgsrc-XXXXXX");
	if (!mkdtemp(tree))
		return -1;
	sh("cd %s && mkdir policy.d issuers.d && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt "
	   "-subj /CN=cfgsrc-ca -days 2 2>/dev/null && "
	   "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr "
	   "-subj /CN=localhost 2>/dev/null && "
	   "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out leaf.crt -days 2 2>/dev/null && "
	   "cat leaf.crt ca.crt > server.crt && chmod 0600 server.key",
	   tree);
	snprintf(text, sizeof(text),
		 "{ \"upstreams\": {\n"
		 "    \"main\": { \"address\": \"127.0.0.1:5432\", \"tls\": \"verify-full\", \"ca_file\": \"%s/ca.crt\", \"role\": \"app\" },\n"
		 "    \"db2\": { \"address\": \"localhost:5433\", \"tls\": \"require\", \"role\": \"app\" } },\n"
		 "  \"credentials_file\": \"%s/credentials.json\", \"policy_dir\": \"%s/policy.d\",\n"
		 "  \"issuers_dir\": \"%s/issuers.d\", \"mask_key_file\": \"%s/mask.key\", \"sessions_dir\": null,\n"
		 "  \"client_tls\": { \"cert\": \"%s/server.crt\", \"key\": \"%s/server.key\" },\n"
		 "  \"workers\": 3, \"worker_user\": \"pgt-worker\" }\n",
		 tree, tree, tree, tree, tree, tree, tree);
	put("pgtether.json", text, 0644);
	snprintf(text, sizeof(text), "{ \"main\": { \"app\": \"%s\", \"reader\": \"%s\", \"unused\": \"%s\" }, \"db2\": { \"app\": \"%s\" } }",
		 passwords[0], passwords[1], passwords[2], passwords[3]);
	put("credentials.json", text, 0600);
	put("mask.key", "0123456789abcdef0123456789abcdef", 0600);
	put("policy.d/10-a.json",
	    "{ \"rules\": [\n"
	    "  { \"name\": \"ci\", \"match\": { \"cgroup\": \"/ci/**\", \"issuer\": \"https://issuer.example\", \"claims\": { \"sub\": \"repo:a\" } },\n"
	    "    \"token\": { \"source\": \"password\" }, \"upstream\": \"main\" },\n"
	    "  { \"name\": \"no-prs\", \"effect\": \"deny\", \"match\": { \"cgroup\": \"/ci/pr/**\" } } ] }\n", 0644);
	put("policy.d/20-b.json",
	    "{ \"rules\": [\n"
	    "  { \"name\": \"agent\", \"match\": { \"cgroup\": \"/agent\" }, \"token\": { \"source\": \"none\" },\n"
	    "    \"upstream\": \"main\", \"role\": \"reader\",\n"
	    "    \"mask\": [ { \"column\": \"public.users.email\", \"strategy\": \"email\" },\n"
	    "              { \"column\": \"public.users.card\", \"strategy\": \"hash\" } ] },\n"
	    "  { \"name\": \"batch\", \"match\": { \"cgroup\": \"/batch\" }, \"token\": { \"source\": \"none\" }, \"upstream\": \"db2\" } ] }\n",
	    0644);
	put("policy.d/30-old.json~", "garbage", 0644);
	put("policy.d/.hidden.json", "garbage", 0644);
	put("issuers.d/10-example.json",
	    "{ \"issuer\": \"https://issuer.example\", \"audiences\": [\"pgtether\"], \"algorithms\": [\"ES256\"],\n"
	    "  \"jwks_file\": \"example.jwks.json\" }\n", 0644);
	/* the public EC key of RFC 7517 appendix A.1 */
	put("issuers.d/example.jwks.json",
	    "{ \"keys\": [ { \"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"1\",\n"
	    "  \"x\": \"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\", \"y\": \"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\" } ] }\n",
	    0644);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf '%s'", tree);
	return 0;
}

static char *conf_path(void)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/pgtether.json", tree);
	return path;
}

/* The bytes of a memfd, in a malloc'd buffer of *ret_len. */
static uint8_t *memfd_bytes(int fd, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;

	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	*ret_len = (size_t)st.st_size;
	return buf;
}

/* A recording of a whole load (and its TLS contexts) as a sealed memfd. */
static int record(struct config *ret, char *err)
{
	struct cfgsrc *src = cfgsrc_disk();
	int fd;

	assert_non_null(src);
	if (config_load_src(conf_path(), src, 0, ret, err) < 0 || tls_prepare_src(ret, src, err) < 0)
		fail_msg("%s", err);
	assert_int_equal(cfgsrc_to_memfd(src, &fd, err, CONFIG_ERR_LEN), 0);
	cfgsrc_free(src);
	return fd;
}

static void test_record_replay(void **state)
{
	char err[CONFIG_ERR_LEN] = "", cred[256], *text;
	struct config p, w;
	struct cfgsrc *src;
	STACK_OF(X509) *chain = NULL;
	struct stat st;
	uint8_t *bytes;
	size_t len;
	int fd, seals;

	(void)state;
	fd = record(&p, err);
	seals = fcntl(fd, F_GET_SEALS);
	assert_int_equal(seals & (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
			 F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* no password anywhere in what a worker gets */
	bytes = memfd_bytes(fd, &len);
	for (size_t i = 0; i < sizeof(passwords) / sizeof(*passwords); i++)
		assert_null(memmem(bytes, len, passwords[i], strlen(passwords[i])));
	assert_non_null(memmem(bytes, len, "0123456789abcdef0123456789abcdef", 32)); /* the mask key is */
	free(bytes);

	src = cfgsrc_from_memfd(fd, err, sizeof(err));
	if (!src)
		fail_msg("%s", err);
	assert_true(cfgsrc_is_replay(src));
	assert_int_equal(cfgsrc_euid(src), geteuid());
	if (config_load_src(conf_path(), src, CONFIG_LOAD_WORKER, &w, err) < 0 || tls_prepare_src(&w, src, err) < 0)
		fail_msg("%s", err);

	/* the same rules in the same order, with the same masks */
	assert_int_equal(p.policy.n, 4);
	assert_int_equal(w.policy.n, p.policy.n);
	for (size_t i = 0; i < p.policy.n; i++) {
		const struct policy_rule *a = &p.policy.rules[i], *b = &w.policy.rules[i];

		assert_string_equal(a->name, b->name);
		assert_string_equal(a->file, b->file);
		assert_int_equal(a->line, b->line);
		assert_int_equal(a->deny, b->deny);
		assert_int_equal(a->n_masks, b->n_masks);
		for (size_t m = 0; m < a->n_masks; m++) {
			assert_string_equal(a->masks[m].column, b->masks[m].column);
			assert_int_equal(a->masks[m].strategy, b->masks[m].strategy);
		}
	}
	assert_string_equal(w.policy.rules[0].name, "ci");
	assert_string_equal(w.policy.rules[3].name, "batch");
	assert_int_equal(w.policy.rules[2].n_masks, 2);
	assert_int_equal(w.issuers.n, 1);
	assert_string_equal(w.issuers.v[0].issuer, "https://issuer.example");
	assert_true(w.have_mask_key);
	assert_memory_equal(w.mask_key, p.mask_key, sizeof(p.mask_key));
	assert_int_equal(w.workers, 3);
	assert_string_equal(w.worker_user, "pgt-worker");

	/* roles: the parent holds every credential, the worker the names it can use */
	assert_int_equal(p.upstreams[0].n_roles, 3);
	assert_non_null(config_role_for(&p.upstreams[0], "app")->password);
	assert_int_equal(w.upstreams[0].n_roles, 2);
	assert_null(config_role_for(&w.upstreams[0], "app")->password);
	assert_null(config_role_for(&w.upstreams[0], "reader")->password);
	assert_null(config_role_for(&w.upstreams[0], "unused"));
	assert_int_equal(w.upstreams[1].n_roles, 1);
	assert_null(w.upstreams[1].roles[0].password);
	/* no DNS in the worker: the parent resolved localhost, the worker did not */
	assert_true(p.upstreams[1].n_resolved > 0);
	assert_int_equal(w.upstreams[1].n_resolved, 0);

	/* the TLS contexts, the client one with its chain behind the leaf */
	assert_non_null(w.client_ssl_ctx);
	assert_non_null(w.upstreams[0].ssl_ctx);
	assert_non_null(w.upstreams[1].ssl_ctx);
	assert_int_equal(SSL_CTX_get0_chain_certs(w.client_ssl_ctx, &chain), 1);
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_STORE_get0_objects(SSL_CTX_get_cert_store(w.upstreams[0].ssl_ctx)) ? 1 : 0, 1);

	/* what the parent did not read is not there; the credentials are the parent's */
	assert_int_equal(cfgsrc_read(src, "/etc/passwd", 1 << 20, false, &text, &len, &st, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/etc/passwd: cannot open: not in the configuration the parent read"));
	snprintf(cred, sizeof(cred), "%s/credentials.json", tree);
	assert_int_equal(cfgsrc_read(src, cred, 1 << 20, true, &text, &len, &st, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "held by the parent only"));
	{
		char **names;
		size_t n;

		assert_int_equal(cfgsrc_list(src, "/etc", NULL, &names, &n, err, sizeof(err)), -ENODATA);
	}
	/* a worker's snapshot without the flag would need the credentials: refused */
	{
		struct config x;

		assert_int_equal(config_load_src(conf_path(), src, 0, &x, err), -EACCES);
		assert_non_null(strstr(err, "held by the parent only"));
	}
	/* a kept file read with a lower bound is too big, as on the disk */
	snprintf(cred, sizeof(cred), "%s/mask.key", tree);
	assert_int_equal(cfgsrc_read(src, cred, 8, false, &text, &len, &st, err, sizeof(err)), -EINVAL);
	assert_int_equal(cfgsrc_read(src, cred, 64, false, &text, &len, &st, err, sizeof(err)), 0);
	assert_int_equal(len, 32);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 32);
	free(text);

	tls_release(&w);
	config_release(&w);
	tls_release(&p);
	config_release(&p);
	cfgsrc_free(src);
	close(fd);
}

/* The owner and mode checks of a worker's load use the kept stat: a mask key others
 * may read fails in the replay as it did in the parent. */
static void test_replay_checks_stat(void **state)
{
	char err[CONFIG_ERR_LEN] = "";
	struct cfgsrc *src = cfgsrc_disk(), *w;
	struct config c;
	char path[128];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/mask.key", tree);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(config_load_src(conf_path(), src, 0, &c, err), -EPERM);
	assert_non_null(strstr(err, "the mask key must be owned by uid 0 and readable by nobody else (mode 0644)"));
	assert_int_equal(cfgsrc_to_memfd(src, &fd, err, sizeof(err)), 0);
	w = cfgsrc_from_memfd(fd, err, sizeof(err));
	assert_non_null(w);
	memset(err, 0, sizeof(err));
	assert_int_equal(config_load_src(conf_path(), w, CONFIG_LOAD_WORKER, &c, err), -EPERM);
	assert_non_null(strstr(err, "the mask key must be owned by uid 0 and readable by nobody else (mode 0644)"));
	assert_int_equal(chmod(path, 0600), 0);
	cfgsrc_free(w);
	cfgsrc_free(src);
	close(fd);
}

/* A recording serves a path read twice from its copy; secret sticks to a path. */
static void test_recording_keeps(void **state)
{
	char err[256], path[128], *a, *b;
	struct cfgsrc *src = cfgsrc_disk(), *w;
	struct stat st;
	size_t alen, blen, len;
	uint8_t *bytes;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/policy.d/10-a.json", tree);
	assert_int_equal(cfgsrc_read(src, path, 1 << 20, false, &a, &alen, &st, err, sizeof(err)), 0);
	put("policy.d/10-a.json", "{ \"rules\": [] }\n", 0644);
	assert_int_equal(cfgsrc_read(src, path, 1 << 20, false, &b, &blen, &st, err, sizeof(err)), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	/* read as secret now: the copy goes */
	free(b);
	assert_int_equal(cfgsrc_read(src, path, 1 << 20, true, &b, &blen, &st, err, sizeof(err)), 0);
	free(b);
	assert_int_equal(cfgsrc_to_memfd(src, &fd, err, sizeof(err)), 0);
	bytes = memfd_bytes(fd, &len);
	assert_null(memmem(bytes, len, a, alen));
	free(bytes);
	w = cfgsrc_from_memfd(fd, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(cfgsrc_read(w, path, 1 << 20, false, &b, &blen, &st, err, sizeof(err)), -EACCES);
	/* a serialized replay is not a recording */
	assert_int_equal(cfgsrc_to_memfd(w, &fd, err, sizeof(err)), -EINVAL);
	put("policy.d/10-a.json", a, 0644);
	free(a);
	cfgsrc_free(w);
	cfgsrc_free(src);
	close(fd);
}

/* Listings: the filter applies, a missing directory is -ENOENT in both. */
static void test_listing(void **state)
{
	char err[256], dir[128], nodir[128], **names;
	struct cfgsrc *src = cfgsrc_disk(), *w;
	size_t n;
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/policy.d", tree);
	snprintf(nodir, sizeof(nodir), "%s/nope.d", tree);
	assert_int_equal(cfgsrc_list(NULL, dir, NULL, &names, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4); /* . and .. never */
	assert_string_equal(names[0], ".hidden.json");
	assert_string_equal(names[3], "30-old.json~");
	cfgsrc_names_free(names, n);
	assert_int_equal(cfgsrc_list(src, dir, NULL, &names, &n, err, sizeof(err)), 0);
	cfgsrc_names_free(names, n);
	assert_int_equal(cfgsrc_list(src, nodir, NULL, &names, &n, err, sizeof(err)), -ENOENT);
	assert_int_equal(cfgsrc_to_memfd(src, &fd, err, sizeof(err)), 0);
	w = cfgsrc_from_memfd(fd, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(cfgsrc_list(w, nodir, NULL, &names, &n, err, sizeof(err)), -ENOENT);
	assert_string_equal(err + strlen(nodir), ": cannot read: No such file or directory");
	assert_int_equal(cfgsrc_list(w, dir, NULL, &names, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_string_equal(names[1], "10-a.json");
	assert_string_equal(names[2], "20-b.json");
	cfgsrc_names_free(names, n);
	cfgsrc_free(w);
	cfgsrc_free(src);
	close(fd);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Cut, lying or unsealed bundles are refused with a message, never read past. */
static void test_corrupt(void **state)
{
	char err[CONFIG_ERR_LEN];
	struct config c;
	struct cfgsrc *src;
	uint8_t *good, *bad;
	size_t len;
	int fd, plain;

	(void)state;
	fd = record(&c, err);
	tls_release(&c);
	config_release(&c);
	good = memfd_bytes(fd, &len);
	close(fd);
	bad = malloc(len);
	assert_non_null(bad);

	src = cfgsrc_parse(good, len, err, sizeof(err));
	assert_non_null(src);
	cfgsrc_free(src);
	/* every cut is refused (each in a buffer of its own size, for ASan) */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *b = malloc(cut ? cut : 1);

		memcpy(b, good, cut);
		err[0] = '\0';
		assert_null(cfgsrc_parse(b, cut, err, sizeof(err)));
		assert_true(strncmp(err, "configuration bundle: ", 22) == 0);
		free(b);
	}
	/* a cut whose header says its new length: the records are cut short */
	memcpy(bad, good, len);
	{
		uint64_t l = len - 7;

		memcpy(bad + 24, &l, 8);
	}
	assert_null(cfgsrc_parse(bad, len - 7, err, sizeof(err)));
	/* the first file's path length, past the end */
	memcpy(bad, good, len);
	put32(bad + 32, 0xfffffff0u);
	assert_null(cfgsrc_parse(bad, len, err, sizeof(err)));
	assert_string_equal(err, "configuration bundle: a file record has a bad path length or flags");
	/* one byte shorter: the NUL is not where the length says */
	memcpy(bad, good, len);
	{
		uint32_t pl;

		memcpy(&pl, good + 32, 4);
		put32(bad + 32, pl - 1);
	}
	assert_null(cfgsrc_parse(bad, len, err, sizeof(err)));
	assert_string_equal(err, "configuration bundle: a file record's path is not a string of its length");
	/* the data length against the stat's size */
	memcpy(bad, good, len);
	bad[32 + 48] ^= 1;
	assert_null(cfgsrc_parse(bad, len, err, sizeof(err)));
	/* counts beyond the bounds, a wrong magic, a wrong version */
	memcpy(bad, good, len);
	put32(bad + 16, CFGSRC_MAX_FILES + 1);
	assert_null(cfgsrc_parse(bad, len, err, sizeof(err)));
	memcpy(bad, good, len);
	put32(bad + 16, 100);
	assert_null(cfgsrc_parse(bad, len, err, sizeof(err)));
	memcpy(bad, good, len);
	bad[0] = 'P';
	assert_null(cfgsrc_parse(bad, len, err, sizeof(err)));
	memcpy(bad, good, len);
	put32(bad + 8, 2);
	assert_null(cfgsrc_parse(bad, len, err, sizeof(err)));
	/* every single byte flipped: refused or parsed, never a crash (ASan watches) */
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, good, len);
		bad[i] ^= 0xa5;
		cfgsrc_free(cfgsrc_parse(bad, len, err, sizeof(err)));
	}

	/* an fd that is not sealed is refused, even with a good bundle in it */
	plain = memfd_create("t", MFD_CLOEXEC);
	assert_true(plain >= 0);
	assert_int_equal(write(plain, good, len), (ssize_t)len);
	assert_null(cfgsrc_from_memfd(plain, err, sizeof(err)));
	assert_non_null(strstr(err, "not sealed"));
	close(plain);
	free(bad);
	free(good);
}

/* TLS files behind symbolic links (certbot's live/, a distribution's CA bundle) load
 * as OpenSSL's *_file functions loaded them; the system store of an upstream without
 * ca_file (SSL_CERT_FILE here) is read by the parent and replayed by the worker. */
static void test_tls_links(void **state)
{
	char err[CONFIG_ERR_LEN] = "", text[2048], path[128];
	struct cfgsrc *src = cfgsrc_disk(), *w;
	struct config p, c;
	int fd;

	(void)state;
	sh("cd %s && ln -sf ca.crt sys-ca.pem && ln -sf server.crt live.crt && ln -sf server.key live.key", tree);
	snprintf(text, sizeof(text),
		 "{ \"upstreams\": { \"sys\": { \"address\": \"127.0.0.1:5432\", \"tls\": \"verify-full\", \"role\": \"app\" } },\n"
		 "  \"credentials_file\": \"%s/credentials2.json\", \"policy_dir\": \"%s/none.d\", \"issuers_dir\": \"%s/none.d\",\n"
		 "  \"client_tls\": { \"cert\": \"%s/live.crt\", \"key\": \"%s/live.key\" } }\n",
		 tree, tree, tree, tree, tree);
	put("pgtether2.json", text, 0644);
	put("credentials2.json", "{ \"sys\": { \"app\": \"pw\" } }", 0600);
	snprintf(path, sizeof(path), "%s/pgtether2.json", tree);
	snprintf(text, sizeof(text), "%s/sys-ca.pem", tree);
	assert_int_equal(setenv("SSL_CERT_FILE", text, 1), 0);
	if (config_load_src(path, src, 0, &p, err) < 0 || tls_prepare_src(&p, src, err) < 0)
		fail_msg("%s", err);
	assert_int_equal(cfgsrc_to_memfd(src, &fd, err, sizeof(err)), 0);
	w = cfgsrc_from_memfd(fd, err, sizeof(err));
	assert_non_null(w);
	/* the worker's environment may differ: it reads only the bundle */
	assert_int_equal(setenv("SSL_CERT_FILE", "/nonexistent/ca.pem", 1), 0);
	assert_int_equal(config_load_src(path, w, CONFIG_LOAD_WORKER, &c, err), 0);
	assert_int_equal(tls_prepare_src(&c, w, err), -EINVAL);
	assert_non_null(strstr(err, "upstream 'sys': cannot load CA (system store) /nonexistent/ca.pem: cannot open: not in the configuration"));
	tls_release(&c);
	assert_int_equal(setenv("SSL_CERT_FILE", text, 1), 0);
	if (tls_prepare_src(&c, w, err) < 0)
		fail_msg("%s", err);
	assert_int_equal(sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(c.upstreams[0].ssl_ctx))), 1);
	assert_non_null(c.client_ssl_ctx);
	unsetenv("SSL_CERT_FILE");
	tls_release(&c);
	config_release(&c);
	tls_release(&p);
	config_release(&p);
	cfgsrc_free(w);
	cfgsrc_free(src);
	close(fd);
}

/* workers and worker_user: defaults and bounds */
static void test_worker_keys(void **state)
{
	char err[CONFIG_ERR_LEN];
	struct config c;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	assert_int_equal(config_parse("t.json", "{}", 2, &c, err), 0);
	assert_int_equal(c.workers, 0);
	assert_int_equal(config_workers(&c), cpus < 1 ? 1 : cpus > 64 ? 64 : cpus);
	assert_string_equal(c.worker_user, "pgtether");
	config_release(&c);
	assert_int_equal(config_parse("t.json", "{\"workers\": 64}", 15, &c, err), 0);
	assert_int_equal(c.workers, 64);
	config_release(&c);
	assert_int_equal(config_parse("t.json", "{\"workers\": 65}", 15, &c, err), -EINVAL);
	assert_string_equal(err, "t.json:1:2: 'workers' must be an integer from 1 to 64 (default: the number of online CPUs)");
	assert_int_equal(config_parse("t.json", "{\"workers\": 0}", 14, &c, err), -EINVAL);
	assert_int_equal(config_parse("t.json", "{\"worker_user\": \"root\"}", 23, &c, err), -EINVAL);
	assert_non_null(strstr(err, "'worker_user' must not be root"));
	assert_int_equal(config_parse("t.json", "{\"worker_user\": \"0\"}", 20, &c, err), -EINVAL);
	assert_non_null(strstr(err, "'worker_user' must not be root"));
	assert_int_equal(config_parse("t.json", "{\"worker_user\": \"a b\"}", 22, &c, err), -EINVAL);
	assert_non_null(strstr(err, "'worker_user' must be a user name or number"));
	assert_int_equal(config_parse("t.json", "{\"worker_usr\": \"x\"}", 19, &c, err), -EINVAL);
	assert_string_equal(err, "t.json:1:2: unknown key 'worker_usr' (did you mean 'worker_user'?)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_replay),
		cmocka_unit_test(test_replay_checks_stat),
		cmocka_unit_test(test_recording_keeps),
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_tls_links),
		cmocka_unit_test(test_worker_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
