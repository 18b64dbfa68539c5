/*
 * Socket addresses as pgtether keeps them: 16 bytes in network order, IPv4 as the
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d), plus a port in host order. This is the
 * representation of bpf/intercept.h, so a tuple read with getpeername() and one the
 * kernel filed in the origins map compare with memcmp().
 */
#ifndef PGTETHER_ADDR_H
#define PGTETHER_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Enough for "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128]:65535". */
#define ADDR_STRLEN 64

struct addr {
	uint8_t ip[16];
	uint16_t port;
};

/* A target: port always, address as far as `prefix` bits of the 128 (0 = any). */
struct addr_target {
	uint8_t ip[16];
	unsigned prefix;
	uint16_t port;
};

/* True when ip is ::ffff:a.b.c.d. */
bool addr_is_v4(const uint8_t ip[16]);

/*
 * Parses "127.0.0.1:6432" or "[::1]:6432" (literal addresses only; no names, since
 * a policy decision must not depend on DNS). Returns 0 or -EINVAL; ret untouched on
 * failure.
 */
int addr_parse(const char *s, struct addr *ret);

/*
 * Parses a target: "*:5432", "127.0.0.2:5432", "127.0.0.0/8:5432", "[::1]:5432",
 * "[fd00::/8]:5432". Host bits beyond the prefix must be zero. 0 or -EINVAL.
 */
int addr_parse_target(const char *s, struct addr_target *ret);

/* From a sockaddr_in/sockaddr_in6 (mapped addresses kept mapped). 0 or -EAFNOSUPPORT. */
int addr_from_sockaddr(const struct sockaddr *sa, struct addr *ret);

/*
 * To a sockaddr: AF_INET for mapped addresses, AF_INET6 otherwise. Returns the
 * length to pass to connect()/bind().
 */
socklen_t addr_to_sockaddr(const struct addr *a, struct sockaddr_storage *ret);

/* "127.0.0.1:5432" or "[::1]:5432" into buf (ADDR_STRLEN bytes); returns buf. */
const char *addr_format(const struct addr *a, char *buf);
/* "*:5432", "127.0.0.0/8:5432", ...; returns buf. */
const char *addr_format_target(const struct addr_target *t, char *buf);

#endif
