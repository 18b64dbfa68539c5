/*
 * Parsing and printing of listener, target and peer addresses. Pure: no resolver,
 * no sockets.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool addr_is_v4(const uint8_t ip[16])
{
	return memcmp(ip, v4_prefix, sizeof(v4_prefix)) == 0;
}

static int parse_port(const char *s, uint16_t *ret)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

/* Splits "host:port" / "[host]:port" into host (copied to hbuf) and port text. */
static int split_host_port(const char *s, char *hbuf, size_t hlen, const char **ret_port)
{
	const char *colon;
	size_t n;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		s++;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (memchr(s, ':', n)) /* a bare IPv6 address needs brackets */
			return -EINVAL;
	}
	if (n == 0 || n >= hlen)
		return -EINVAL;
	memcpy(hbuf, s, n);
	hbuf[n] = '\0';
	*ret_port = colon + 1;
	return 0;
}

/* A literal IPv4 or IPv6 address into the 16-byte form; also reports the family. */
static int parse_ip(const char *s, uint8_t ip[16], bool *ret_v4)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(ip, v4_prefix, 12);
		memcpy(ip + 12, &a4, 4);
		*ret_v4 = true;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip) == 1) {
		*ret_v4 = addr_is_v4(ip);
		return 0;
	}
	return -EINVAL;
}

int addr_parse(const char *s, struct addr *ret)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	struct addr a;
	bool v4;

	if (split_host_port(s, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (parse_ip(host, a.ip, &v4) < 0 || parse_port(port, &a.port) < 0)
		return -EINVAL;
	*ret = a;
	return 0;
}

int addr_parse_target(const char *s, struct addr_target *ret)
{
	char host[INET6_ADDRSTRLEN + 8];
	struct addr_target t;
	const char *port;
	char *slash;
	bool v4;

	memset(&t, 0, sizeof(t));
	if (s[0] == '*' && s[1] == ':') {
		if (parse_port(s + 2, &t.port) < 0)
			return -EINVAL;
		*ret = t;
		return 0;
	}
	if (split_host_port(s, host, sizeof(host), &port) < 0 || parse_port(port, &t.port) < 0)
		return -EINVAL;
	slash = strchr(host, '/');
	if (slash)
		*slash = '\0';
	if (parse_ip(host, t.ip, &v4) < 0)
		return -EINVAL;
	t.prefix = 128;
	if (slash) {
		char *end;
		unsigned long p;

		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		p = strtoul(slash + 1, &end, 10);
		if (*end || p > (v4 ? 32u : 128u))
			return -EINVAL;
		t.prefix = (unsigned)p + (v4 ? 96 : 0);
	}
	/* Host bits set beyond the prefix are a typo more often than not: refuse. */
	for (unsigned bit = t.prefix; bit < 128; bit++)
		if (t.ip[bit / 8] & (0x80 >> (bit % 8)))
			return -EINVAL;
	*ret = t;
	return 0;
}

int addr_from_sockaddr(const struct sockaddr *sa, struct addr *ret)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(ret->ip, v4_prefix, 12);
		memcpy(ret->ip + 12, &in->sin_addr, 4);
		ret->port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(ret->ip, &in6->sin6_addr, 16);
		ret->port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

socklen_t addr_to_sockaddr(const struct addr *a, struct sockaddr_storage *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (addr_is_v4(a->ip)) {
		struct sockaddr_in *in = (struct sockaddr_in *)ret;

		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->ip + 12, 4);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;

	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(a->port);
	memcpy(&in6->sin6_addr, a->ip, 16);
	return sizeof(*in6);
}

static void format_ip(const uint8_t ip[16], char *out, size_t len)
{
	if (addr_is_v4(ip))
		inet_ntop(AF_INET, ip + 12, out, (socklen_t)len);
	else
		inet_ntop(AF_INET6, ip, out, (socklen_t)len);
}

const char *addr_format(const struct addr *a, char *buf)
{
	char ip[INET6_ADDRSTRLEN];

	format_ip(a->ip, ip, sizeof(ip));
	snprintf(buf, ADDR_STRLEN, addr_is_v4(a->ip) ? "%s:%u" : "[%s]:%u", ip, a->port);
	return buf;
}

const char *addr_format_target(const struct addr_target *t, char *buf)
{
	char ip[INET6_ADDRSTRLEN];
	bool v4 = addr_is_v4(t->ip) && t->prefix >= 96;

	if (t->prefix == 0) {
		snprintf(buf, ADDR_STRLEN, "*:%u", t->port);
		return buf;
	}
	format_ip(t->ip, ip, sizeof(ip));
	if (t->prefix == 128)
		snprintf(buf, ADDR_STRLEN, v4 ? "%s:%u" : "[%s]:%u", ip, t->port);
	else
		snprintf(buf, ADDR_STRLEN, v4 ? "%s/%u:%u" : "[%s/%u]:%u", ip,
			 v4 ? t->prefix - 96 : t->prefix, t->port);
	return buf;
}
