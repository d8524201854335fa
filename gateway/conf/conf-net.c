/* conf-net.c: the names and addresses a map holds (see conf.h): iSCSI
 * names, "HOST:PORT" portals, and the "networks" a target admits with
 * the check of a peer address against them.  Pure functions: any thread.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

bool
conf_valid_iscsi_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 223)
		return false;
	if (!strncmp(n, "iqn.", 4)) {
		/* iqn.yyyy-mm.reversed.domain[:anything] */
		if (len < 12 || !isdigit((unsigned char)n[4]) ||
		    !isdigit((unsigned char)n[5]) || !isdigit((unsigned char)n[6]) ||
		    !isdigit((unsigned char)n[7]) || n[8] != '-' ||
		    !isdigit((unsigned char)n[9]) || !isdigit((unsigned char)n[10]) ||
		    n[11] != '.')
			return false;
		if ((n[9] - '0') * 10 + (n[10] - '0') < 1 ||
		    (n[9] - '0') * 10 + (n[10] - '0') > 12)
			return false;	/* month 01..12 */
		for (size_t i = 12; i < len; i++) {
			unsigned char c = n[i];
			if (!(islower(c) || isdigit(c) || c == '.' || c == '-' ||
			      c == ':'))
				return false;
		}
		return len > 12;
	}
	if (!strncmp(n, "eui.", 4) || !strncmp(n, "naa.", 4)) {
		size_t hex = len - 4;
		if (n[0] == 'e' && hex != 16)
			return false;
		if (n[0] == 'n' && hex != 16 && hex != 32)
			return false;
		for (size_t i = 4; i < len; i++)
			if (!isxdigit((unsigned char)n[i]) ||
			    islower((unsigned char)n[i]))
				return false;
		return true;
	}
	return false;
}

int
conf_parse_portal(const char *s, char *host, size_t hostsz, unsigned *port)
{
	const char *colon;
	size_t hlen;
	char *end;
	unsigned long p;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hlen = rb - s - 1;
		if (hlen == 0 || hlen >= hostsz)
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hlen = colon - s;
		if (hlen == 0 || hlen >= hostsz || memchr(s, ':', hlen))
			return -1;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
	}
	if (!isdigit((unsigned char)colon[1]))
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || p > 65535)
		return -1;
	*port = (unsigned)p;
	return 0;
}

int
conf_parse_net(const char *s, struct conf_net *net)
{
	char buf[64], *slash, *end;
	unsigned long prefix;
	unsigned max;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	memset(net, 0, sizeof *net);
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	prefix = max;
	if (slash) {
		prefix = strtoul(slash, &end, 10);
		if (!*slash || *end || prefix > max)
			return -1;
	}
	net->prefix = (unsigned)prefix;
	/* Clear the host bits: "10.1.2.3/8" is 10.0.0.0/8. */
	for (unsigned bit = net->prefix; bit < max; bit++)
		net->addr[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	return 0;
}

bool
conf_net_match(const struct conf_net *nets, size_t n, const struct sockaddr *sa)
{
	uint8_t a[16];
	int family;

	if (!nets)
		return true;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		/* An IPv4 peer on an IPv6 socket: ::ffff:a.b.c.d. */
		if (!memcmp(b, mapped, 12)) {
			family = AF_INET;
			memcpy(a, b + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(a, b, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct conf_net *net = &nets[i];
		unsigned full = net->prefix / 8, rest = net->prefix % 8;

		if (net->family != family || memcmp(a, net->addr, full))
			continue;
		if (rest && ((a[full] ^ net->addr[full]) & (uint8_t)(0xff << (8 - rest))))
			continue;
		return true;
	}
	return false;
}
