/* Unit tests for daemon/config.c and daemon/jsonpos.c: what loads, and the
 * file:line:col of everything that must not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "jsonpos.h"

static int parse(const char *text, struct config *c, char *err)
{
	return config_parse("t.json", text, strlen(text), c, err);
}

static void expect_error(const char *text, const char *message)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "";

	assert_int_equal(parse(text, &c, err), -EINVAL);
	assert_string_equal(err, message);
}

static void test_defaults(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "", buf[ADDR_STRLEN];

	(void)state;
	/* keys starting with // are comments, whatever their value */
	assert_int_equal(parse("{\"//\": \"pgtether\", \"//listen\": [1, {}]}", &c, err), 0);
	assert_string_equal(addr_format(&c.listen, buf), "127.0.0.1:6432");
	assert_int_equal(c.n_targets, 1);
	assert_string_equal(addr_format_target(&c.targets[0], buf), "*:5432");
	assert_int_equal(c.n_cgroups, 0);
	assert_int_equal(c.fail_mode, CONFIG_FAIL_CLOSED);
	assert_string_equal(c.bpffs_dir, "/sys/fs/bpf/pgtether");
	assert_string_equal(c.control_socket, "/run/pgtether/control.sock");
	assert_int_equal(c.login_timeout, 30);
	assert_int_equal(c.mask_refresh, 60);
	assert_int_equal(c.max_logins, 1024);
	assert_int_equal(c.max_logins_per_cgroup, 256);
	assert_int_equal(c.memory_budget, 512u << 20);
	config_release(&c);
}

/* The caps on connections still logging in and the memory budget. */
static void test_limits(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "";

	(void)state;
	assert_int_equal(parse("{\"max_logins\": 100, \"max_logins_per_cgroup\": 10, \"memory_budget\": 1048576}", &c, err), 0);
	assert_int_equal(c.max_logins, 100);
	assert_int_equal(c.max_logins_per_cgroup, 10);
	assert_int_equal(c.memory_budget, 1048576);
	config_release(&c);
	/* a max_logins below the per-cgroup default makes that default follow it */
	assert_int_equal(parse("{\"max_logins\": 8}", &c, err), 0);
	assert_int_equal(c.max_logins_per_cgroup, 8);
	config_release(&c);
	assert_int_equal(parse("{\"max_logins_per_cgroup\": 1024}", &c, err), 0);
	assert_int_equal(c.max_logins_per_cgroup, 1024);
	config_release(&c);

	expect_error("{\"max_logins\": 0}", "t.json:1:2: 'max_logins' must be an integer from 1 to 65536");
	expect_error("{\"max_logins\": 65537}", "t.json:1:2: 'max_logins' must be an integer from 1 to 65536");
	expect_error("{\"max_logins\": \"10\"}", "t.json:1:2: 'max_logins' must be an integer from 1 to 65536");
	expect_error("{\"max_logins_per_cgroup\": 0}", "t.json:1:2: 'max_logins_per_cgroup' must be an integer from 1 to 65536");
	expect_error("{\"max_logins_per_cgroup\": 2000}",
		     "t.json:1:2: 'max_logins_per_cgroup' (2000) must not exceed 'max_logins' (1024)");
	expect_error("{\"max_logins\": 10, \"max_logins_per_cgroup\": 11}",
		     "t.json:1:20: 'max_logins_per_cgroup' (11) must not exceed 'max_logins' (10)");
	expect_error("{\"memory_budget\": 1000}", "t.json:1:2: 'memory_budget' must be a number of bytes from 1048576 to 1099511627776");
	expect_error("{\"memory_budget\": 1.5e9}", "t.json:1:2: 'memory_budget' must be a number of bytes from 1048576 to 1099511627776");
	expect_error("{\"max_login\": 10}", "t.json:1:2: unknown key 'max_login' (did you mean 'max_logins'?)");
}

static void test_full_file(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "", buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(config_load(FIXTURES "/config-full.json", &c, err), 0);
	assert_int_equal(c.n_targets, 4);
	assert_string_equal(addr_format_target(&c.targets[2], buf), "127.0.0.0/8:5434");
	assert_string_equal(addr_format_target(&c.targets[3], buf), "[::1]:5435");
	assert_int_equal(c.n_cgroups, 2);
	assert_string_equal(c.cgroups[0], "/ci");
	assert_string_equal(c.cgroups[1], "/agents"); /* normalized */
	assert_int_equal(c.fail_mode, CONFIG_FAIL_OPEN);
	assert_int_equal(c.socket_mark, 1234);
	assert_int_equal(c.login_timeout, 45);
	config_release(&c);
}

static void test_unknown_key_position_and_hint(void **state)
{
	(void)state;
	expect_error("{\n  \"listen\": \"127.0.0.1:6432\",\n  \"cgroupz\": []\n}",
		     "t.json:3:3: unknown key 'cgroupz' (did you mean 'cgroups'?)");
	expect_error("{\"zzzzzzzz\": 1}", "t.json:1:2: unknown key 'zzzzzzzz'");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_error("{\"targets\": [\"*:5432\",\n   \"nope\"]}",
		     "t.json:2:4: invalid target 'nope' (expected \"*:PORT\", \"ADDR:PORT\", \"ADDR/PREFIX:PORT\" or \"[IPV6]:PORT\", address without host bits beyond the prefix)");
	expect_error("{\"fail_mode\": \"ajar\"}",
		     "t.json:1:2: 'fail_mode' must be \"closed\" or \"open\", got 'ajar'");
	expect_error("{\"listen\": \"[::1]:6432\"}",
		     "t.json:1:2: listen address '[::1]:6432' must be IPv4: the redirect reaches it from IPv6 sockets as ::ffff:a.b.c.d");
	expect_error("{\"cgroups\": [\"/ci\", \"/ci/\"]}", "t.json:1:21: cgroup '/ci' is listed twice");
	expect_error("{\"cgroups\": [\"ci\"]}",
		     "t.json:1:14: a cgroup must be an absolute path below the cgroup2 mount like \"/ci\", without '.', '..' or empty parts");
	expect_error("{\"cgroups\": [\"/ci/../etc\"]}",
		     "t.json:1:14: a cgroup must be an absolute path below the cgroup2 mount like \"/ci\", without '.', '..' or empty parts");
	expect_error("{\"targets\": [\"*:6432\"]}",
		     "t.json:1:14: target '*:6432' includes the listener 127.0.0.1:6432 itself: connections would loop");
	expect_error("{\"targets\": []}",
		     "t.json:1:2: 'targets' must be a non-empty array of \"ADDRESS:PORT\" strings, e.g. [\"*:5432\"]");
	expect_error("{\"bpffs_dir\": \"relative\"}",
		     "t.json:1:2: 'bpffs_dir' must be an absolute path, got 'relative'");
	expect_error("{\"socket_mark\": -1}", "t.json:1:2: 'socket_mark' must be an integer from 1 to 4294967295");
	expect_error("[]", "t.json:1:1: the configuration must be a JSON object");
}

static void test_syntax_and_duplicates(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "";

	(void)state;
	assert_int_equal(parse("{\"listen\": \"127.0.0.1:1\",\n \"listen\": \"127.0.0.1:2\"}", &c, err), -EINVAL);
	assert_non_null(strstr(err, "t.json:2:"));
	assert_non_null(strstr(err, "duplicate object key"));
	assert_int_equal(parse("{\"listen\": ", &c, err), -EINVAL);
	assert_non_null(strstr(err, "t.json:1:"));
}

static void test_missing_file(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "";

	(void)state;
	assert_int_equal(config_load("/nonexistent/pgtether.json", &c, err), -ENOENT);
	assert_string_equal(err, "/nonexistent/pgtether.json: cannot open: No such file or directory");
}

static void test_cgroup_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(config_cgroup_path("/", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(config_cgroup_path("/a//b", out, sizeof(out)), -EINVAL);
	assert_int_equal(config_cgroup_path("/a/b/", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b");
	assert_int_equal(config_cgroup_path("/a/./b", out, sizeof(out)), -EINVAL);
	assert_int_equal(config_cgroup_path("/a/..", out, sizeof(out)), -EINVAL);
	assert_int_equal(config_cgroup_path("/a..b/.c", out, sizeof(out)), 0);
	assert_int_equal(config_cgroup_path("a", out, sizeof(out)), -EINVAL);
	assert_int_equal(config_cgroup_path("/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", out, sizeof(out)), -EINVAL);
}

static void test_upstreams(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "", buf[ADDR_STRLEN];
	struct addr a;

	(void)state;
	assert_int_equal(parse("{\"upstreams\": {\"main\": {\"address\": \"127.0.0.2:5432\", \"aliases\": [\"[::1]:5432\"], \"tls\": \"disable\", \"role\": \"app\"},"
			       " \"byname\": {\"address\": \"localhost:6000\", \"tls\": \"disable\", \"role\": \"ro\"}}}", &c, err), 0);
	assert_int_equal(c.n_upstreams, 2);
	assert_false(c.upstreams[0].named);
	assert_string_equal(c.upstreams[0].host, "127.0.0.2");
	assert_true(c.upstreams[1].named);
	assert_string_equal(c.upstreams[1].host, "localhost");
	addr_parse("[::1]:5432", &a);
	assert_ptr_equal(config_upstream_for(&c, &a), &c.upstreams[0]);
	addr_parse("127.0.0.2:5433", &a);
	assert_null(config_upstream_for(&c, &a));
	/* names resolve (here through /etc/hosts), and every address selects */
	assert_int_equal(config_resolve(&c, err), 0);
	addr_parse("127.0.0.1:6000", &a);
	assert_ptr_equal(config_upstream_for(&c, &a), &c.upstreams[1]);
	assert_string_equal(addr_format(&c.upstreams[1].address, buf), "127.0.0.1:6000");
	/* where pgtetherd connects: the address (what the name resolved to), never an alias */
	{
		const struct addr *to;

		assert_int_equal(config_upstream_addrs(&c.upstreams[0], &to), 1);
		assert_string_equal(addr_format(&to[0], buf), "127.0.0.2:5432");
		assert_int_equal(config_upstream_addrs(&c.upstreams[1], &to), 1);
		assert_string_equal(addr_format(&to[0], buf), "127.0.0.1:6000");
		c.upstreams[1].n_resolved = 0; /* not resolved (yet): its parsed address */
		assert_int_equal(config_upstream_addrs(&c.upstreams[1], &to), 1);
		assert_ptr_equal(to, &c.upstreams[1].address);
		c.upstreams[1].n_resolved = 1;
	}
	/* credentials: every upstream's role needs its password */
	static const char creds[] = "{\"main\": {\"app\": \"s1\", \"app_ro\": \"s3\"}, \"byname\": {\"ro\": \"s2\"}}";
	assert_int_equal(config_parse_credentials(&c, "cred.json", creds, strlen(creds), err), 0);
	assert_string_equal(config_role_for(&c.upstreams[0], "app")->password, "s1");
	assert_string_equal(config_role_for(&c.upstreams[0], "app_ro")->password, "s3"); /* every role is held */
	assert_null(config_role_for(&c.upstreams[0], "ro"));
	assert_string_equal(config_role_for(&c.upstreams[1], "ro")->password, "s2");
	/* rules must name what exists: upstream, role with a credential, trusted issuer */
	free(c.path);
	c.path = strdup("pgtether.json");
	free(c.credentials_file);
	c.credentials_file = strdup("cred.json");
	static const char rules[] = "{\"rules\": [\n"
		"{\"name\": \"a\", \"match\": {\"cgroup\": \"/ci\"}, \"token\": {\"source\": \"none\"}, \"upstream\": \"main\", \"role\": \"app_ro\"},\n"
		"{\"name\": \"b\", \"match\": {\"cgroup\": \"/ci\"}, \"token\": {\"source\": \"none\"}, \"upstream\": \"main\", \"role\": \"admin\"}]}";
	assert_int_equal(policy_parse(&c.policy, "10-ci.json", rules, strlen(rules), err), 0);
	assert_int_equal(config_check_policy(&c, err), -EINVAL);
	assert_string_equal(err, "10-ci.json:3: rule 'b': no credential for role 'admin' of upstream 'main' in cred.json");
	free(c.policy.rules[1].upstream);
	c.policy.rules[1].upstream = strdup("nosuch");
	assert_int_equal(config_check_policy(&c, err), -EINVAL);
	assert_string_equal(err, "10-ci.json:3: rule 'b': no upstream 'nosuch' in pgtether.json");
	policy_release(&c.policy);
	static const char tok[] = "{\"rules\": [{\"name\": \"t\", \"match\": {\"cgroup\": \"/ci\", \"issuer\": \"https://x\"},"
		" \"token\": {\"source\": \"password\"}, \"upstream\": \"main\"}]}";
	assert_int_equal(policy_parse(&c.policy, "20-t.json", tok, strlen(tok), err), 0);
	assert_int_equal(config_check_policy(&c, err), -EINVAL);
	assert_string_equal(err, "20-t.json:1: rule 't': issuer 'https://x' is not trusted: no file in /etc/pgtether/issuers.d names it");
	static const char missing[] = "{\"main\": {\"app\": \"s1\"}}";
	assert_int_equal(config_parse_credentials(&c, "cred.json", missing, strlen(missing), err), -EINVAL);
	assert_string_equal(err, "cred.json:1:1: no password for role 'ro' of upstream 'byname'");
	config_release(&c);

	expect_error("{\"upstreams\": {\"m\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"verify-ful\", \"role\": \"a\"}}}",
		     "t.json:1:51: upstream 'm': tls must be \"disable\", \"require\" or \"verify-full\", got 'verify-ful'");
	expect_error("{\"client_tls\": {\"cert\": \"/c.pem\", \"key\": \"/k.pem\", \"ca\": \"/x\"}}",
		     "t.json:1:52: unknown key 'ca'");
	expect_error("{\"upstreams\": {\"m\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"disable\", \"rol\": \"a\"}}}",
		     "t.json:1:69: unknown key 'rol' (did you mean 'role'?)");
	expect_error("{\"upstreams\": {\"a\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"disable\", \"role\": \"x\"},"
		     " \"b\": {\"address\": \"127.0.0.3:1\", \"aliases\": [\"127.0.0.2:5432\"], \"tls\": \"disable\", \"role\": \"x\"}}}",
		     "t.json:1:83: upstream 'b' shares the address 127.0.0.2:5432 with upstream 'a'");
	expect_error("{\"mask_refresh\": 0}", "t.json:1:2: 'mask_refresh' must be a number of seconds from 1 to 3600");
	expect_error("{\"login_timeout\": 0}", "t.json:1:2: 'login_timeout' must be a number of seconds from 1 to 600");
	expect_error("{\"login_timeout\": \"30s\"}", "t.json:1:2: 'login_timeout' must be a number of seconds from 1 to 600");
	expect_error("{\"max_message_bytes\": 10}", "t.json:1:2: 'max_message_bytes' must be an integer from 65536 to 1073741824");
}

/* The logins pgtether answers for an upstream: SCRAM alone unless the file lists more
 * (an md5 hash salted as a worker asks, or the password itself, are worth more to a
 * worker taken over than a SCRAM proof); the password only over tls verify-full. */
static void test_auth_methods(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "";

	(void)state;
	assert_int_equal(parse("{\"upstreams\": {\"a\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"disable\", \"role\": \"x\"},"
			       " \"b\": {\"address\": \"127.0.0.3:5432\", \"tls\": \"verify-full\", \"role\": \"x\","
			       " \"auth_methods\": [\"md5\", \"password\", \"scram-sha-256\"]},"
			       " \"c\": {\"address\": \"127.0.0.4:5432\", \"tls\": \"require\", \"role\": \"x\", \"auth_methods\": [\"md5\"]}}}",
			       &c, err), 0);
	assert_int_equal(c.upstreams[0].auth_methods, CONFIG_AUTH_SCRAM);
	assert_int_equal(c.upstreams[1].auth_methods, CONFIG_AUTH_SCRAM | CONFIG_AUTH_MD5 | CONFIG_AUTH_PASSWORD);
	assert_int_equal(c.upstreams[2].auth_methods, CONFIG_AUTH_MD5);
	config_release(&c);
	assert_string_equal(config_auth_name(CONFIG_AUTH_MD5), "md5");

	expect_error("{\"upstreams\": {\"m\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"require\", \"role\": \"a\", \"auth_methods\": [\"password\"]}}}",
		     "t.json:1:82: upstream 'm': auth_methods lists \"password\", which pgtether sends only over tls \"verify-full\"");
	expect_error("{\"upstreams\": {\"m\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"disable\", \"role\": \"a\", \"auth_methods\": [\"md5\", \"trust\"]}}}",
		     "t.json:1:106: upstream 'm': auth_methods takes \"scram-sha-256\", \"md5\" and \"password\"");
	expect_error("{\"upstreams\": {\"m\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"disable\", \"role\": \"a\", \"auth_methods\": [\"md5\", \"md5\"]}}}",
		     "t.json:1:106: upstream 'm': auth_methods lists \"md5\" twice");
	expect_error("{\"upstreams\": {\"m\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"disable\", \"role\": \"a\", \"auth_methods\": []}}}",
		     "t.json:1:82: upstream 'm': auth_methods must be a list of \"scram-sha-256\", \"md5\" and \"password\"");
	expect_error("{\"upstreams\": {\"m\": {\"address\": \"127.0.0.2:5432\", \"tls\": \"disable\", \"role\": \"a\", \"auth_methods\": \"md5\"}}}",
		     "t.json:1:82: upstream 'm': auth_methods must be a list of \"scram-sha-256\", \"md5\" and \"password\"");
}

/* The key of "hash" masks: read only when a rule hashes; root's alone; 32 bytes or
 * more; its SHA-256 is the key. */
static void test_mask_key(void **state)
{
	static const char rule[] =
		"{ \"rules\": [ { \"name\": \"r\", \"match\": { \"cgroup\": \"/ci\" }, \"token\": { \"source\": \"none\" },"
		" \"upstream\": \"main\", \"mask\": [ { \"column\": \"users.card\", \"strategy\": \"hash\" } ] } ] }";
	char dir[] = "/tmp/pgtether-test-maskkey-XXXXXX", path[64], text[128], err[CONFIG_ERR_LEN] = "";
	uint8_t want[32];
	unsigned int n;
	struct config c;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mask.key", dir);
	snprintf(text, sizeof(text), "{ \"mask_key_file\": \"%s\" }", path);
	assert_int_equal(parse(text, &c, err), 0);
	assert_string_equal(c.mask_key_file, path);
	/* no rule hashes: no key needed */
	assert_int_equal(config_load_mask_key(&c, err), 0);
	assert_false(c.have_mask_key);
	assert_int_equal(policy_parse(&c.policy, "p.json", rule, strlen(rule), err), 0);
	assert_int_equal(config_load_mask_key(&c, err), -ENOENT);
	assert_non_null(strstr(err, "(a rule masks with \"hash\"; make a key with: head -c 32 /dev/urandom > "));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef", 16), 16);
	assert_int_equal(config_load_mask_key(&c, err), -EPERM); /* readable by others */
	assert_non_null(strstr(err, "the mask key must be owned by uid"));
	assert_int_equal(fchmod(fd, 0600), 0);
	assert_int_equal(config_load_mask_key(&c, err), -EINVAL); /* too short */
	assert_non_null(strstr(err, "the mask key has 16 bytes; it needs at least 32"));
	assert_int_equal(write(fd, "0123456789abcdef", 16), 16);
	close(fd);
	assert_int_equal(config_load_mask_key(&c, err), 0);
	assert_true(c.have_mask_key);
	assert_int_equal(EVP_Digest("0123456789abcdef0123456789abcdef", 32, want, &n, EVP_sha256(), NULL), 1);
	assert_memory_equal(c.mask_key, want, 32);
	config_release(&c);
	unlink(path);
	rmdir(dir);
}

/* approvers_group: a group name or number; unset, root alone approves */
static void test_approvers_group(void **state)
{
	struct config c;
	char err[CONFIG_ERR_LEN] = "";

	(void)state;
	assert_int_equal(parse("{}", &c, err), 0);
	assert_null(c.approvers_group);
	config_release(&c);
	assert_int_equal(parse("{\"approvers_group\": \"pgtether-approvers\"}", &c, err), 0);
	assert_string_equal(c.approvers_group, "pgtether-approvers");
	config_release(&c);
	assert_int_equal(parse("{\"approvers_group\": \"1234\"}", &c, err), 0);
	assert_string_equal(c.approvers_group, "1234");
	config_release(&c);
	expect_error("{\"approvers_group\": 12}",
		     "t.json:1:2: 'approvers_group' must be a group name or number (up to 32 of a-z, 0-9, '_', '.', '-'), e.g. \"pgtether-approvers\"");
	expect_error("{\"approvers_group\": \"ops;rm\"}",
		     "t.json:1:2: 'approvers_group' must be a group name or number (up to 32 of a-z, 0-9, '_', '.', '-'), e.g. \"pgtether-approvers\"");
	expect_error("{\"approvers_group\": \"\"}",
		     "t.json:1:2: 'approvers_group' must be a group name or number (up to 32 of a-z, 0-9, '_', '.', '-'), e.g. \"pgtether-approvers\"");
	expect_error("{\"approvers_group\": \"0\"}",
		     "t.json:1:2: 'approvers_group' must not be group 0 (root's group): root approves anyway, and members of group 0 would all become approvers");
	expect_error("{\"approvers_grup\": \"x\"}", "t.json:1:2: unknown key 'approvers_grup' (did you mean 'approvers_group'?)");
}

static void test_jsonpos(void **state)
{
	static const char text[] =
		"{\n"
		"  \"a\": {\"b\": [1, {\"c\": \"x}\"}, [2, 3]]},\n"
		"  \"sl/ash\": 1, \"ti~lde\": 2, \"esc\\\"q\": 3\n"
		"}";
	int line, col;

	(void)state;
	assert_int_equal(jsonpos_find(text, strlen(text), "/a", &line, &col), 0);
	assert_int_equal(line, 2);
	assert_int_equal(col, 3);
	assert_int_equal(jsonpos_find(text, strlen(text), "/a/b/1/c", &line, &col), 0);
	assert_int_equal(line, 2);
	assert_int_equal(col, 19);
	assert_int_equal(jsonpos_find(text, strlen(text), "/a/b/2/1", &line, &col), 0);
	assert_int_equal(col, 35);
	assert_int_equal(jsonpos_find(text, strlen(text), "/sl~1ash", &line, &col), 0);
	assert_int_equal(line, 3);
	assert_int_equal(col, 3);
	assert_int_equal(jsonpos_find(text, strlen(text), "/ti~0lde", &line, &col), 0);
	assert_int_equal(col, 16);
	assert_int_equal(jsonpos_find(text, strlen(text), "/esc\"q", &line, &col), 0);
	assert_int_equal(col, 29);
	assert_int_equal(jsonpos_find(text, strlen(text), "/a/b/3", &line, &col), -ENOENT);
	assert_int_equal(jsonpos_find(text, strlen(text), "/nope", &line, &col), -ENOENT);
	assert_int_equal(line, 1);
	assert_int_equal(col, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_unknown_key_position_and_hint),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_syntax_and_duplicates),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_cgroup_path),
		cmocka_unit_test(test_upstreams),
		cmocka_unit_test(test_auth_methods),
		cmocka_unit_test(test_jsonpos),
		cmocka_unit_test(test_approvers_group),
		cmocka_unit_test(test_mask_key),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
