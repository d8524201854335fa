/* chap.c: CHAP authentication in the login security stage (RFC 1994,
 * RFC 7143 §12.1.3; SHA-256 and SHA3-256 as CHAP_A 7 and 8 from the IANA
 * PPP CHAP algorithm registry, as Linux initiators use them).
 *
 *   I: AuthMethod=CHAP,None       T: AuthMethod=CHAP
 *   I: CHAP_A=7,5                 T: CHAP_A=7 CHAP_I=id CHAP_C=0x<challenge>
 *   I: CHAP_N=user CHAP_R=0x<r>   T: (mutual) CHAP_N=user CHAP_R=0x<r'>
 *      [CHAP_I=id' CHAP_C=0x<c'>]
 *
 * The response is H(id || secret || challenge).  Challenges come from the
 * kernel's random source and are used once; responses are compared in
 * constant time; an initiator challenge equal to ours (reflection) or
 * seen before (replay) is refused.  Secrets are never logged.  Digests come
 * from OpenSSL's libcrypto.  Loop thread only.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "iscsi.h"
#include "chap.h"
#include "log.h"
#include "util/util.h"

static const struct {
	int id;
	const char *evp;
	unsigned len;
} algs[] = {
	{ .id = 5, .evp = "MD5", .len = 16 },
	{ .id = 7, .evp = "SHA256", .len = 32 },
	{ .id = 8, .evp = "SHA3-256", .len = 32 },
};

/* Initiator challenges seen lately: a reused one is a replay. */
#define SEEN_MAX 256
static uint8_t seen[SEEN_MAX][32];
static unsigned seen_next, seen_count;

int
chap_pick_alg(const char *list)
{
	for (const char *v = list; *v;) {
		const char *comma = strchr(v, ',');
		size_t n = comma ? (size_t)(comma - v) : strlen(v);
		char buf[8];
		if (n < sizeof buf) {
			memcpy(buf, v, n);
			buf[n] = '\0';
			for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
				char want[4];
				snprintf(want, sizeof want, "%d", algs[i].id);
				if (!strcmp(buf, want))
					return algs[i].id;
			}
		}
		v = comma ? comma + 1 : v + n;
	}
	return -1;
}

static int
alg_index(int id)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (algs[i].id == id)
			return (int)i;
	return -1;
}

unsigned
chap_digest_len(int alg)
{
	int i = alg_index(alg);

	return i < 0 ? 0 : algs[i].len;
}

int
chap_new_challenge(struct chap_state *cs, int alg)
{
	uint8_t id;

	cs->alg = alg;
	cs->challenge_len = sizeof cs->challenge;
	if (getrandom(cs->challenge, cs->challenge_len, 0) !=
	    (ssize_t)cs->challenge_len || getrandom(&id, 1, 0) != 1)
		return -EIO;
	cs->id = id;
	return 0;
}

int
chap_response(int alg, uint8_t id, const char *secret, size_t secret_len,
	      const uint8_t *challenge, size_t clen, uint8_t *out)
{
	int i = alg_index(alg);
	EVP_MD_CTX *ctx;
	EVP_MD *md;
	unsigned int n = 0;
	int ok;

	if (i < 0)
		return -EINVAL;
	md = EVP_MD_fetch(NULL, algs[i].evp, NULL);
	ctx = EVP_MD_CTX_new();
	ok = md && ctx && EVP_DigestInit_ex(ctx, md, NULL) &&
	     EVP_DigestUpdate(ctx, &id, 1) &&
	     EVP_DigestUpdate(ctx, secret, secret_len) &&
	     EVP_DigestUpdate(ctx, challenge, clen) &&
	     EVP_DigestFinal_ex(ctx, out, &n) && n == algs[i].len;
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return ok ? 0 : -EIO;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode a CHAP binary value: "0x" hex or "0b" base64 (RFC 7143 §6.1). */
int
chap_decode(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		size_t len = strlen(s + 2);
		const char *p = s + 2;
		if (len == 0)
			return -1;
		if (len & 1) {	/* odd: a leading nibble */
			int v = hexval(*p++);
			if (v < 0 || n >= max)
				return -1;
			out[n++] = v;
		}
		while (*p) {
			int hi = hexval(p[0]), lo = hexval(p[1]);
			if (hi < 0 || lo < 0 || n >= max)
				return -1;
			out[n++] = hi << 4 | lo;
			p += 2;
		}
		return (int)n;
	}
	if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
		size_t len = strlen(s + 2);
		uint8_t tmp[1100];
		int r;
		if (len == 0 || len % 4 || (len / 4) * 3 > sizeof tmp)
			return -1;
		r = EVP_DecodeBlock(tmp, (const unsigned char *)s + 2, (int)len);
		if (r < 0)
			return -1;
		if (s[2 + len - 1] == '=')
			r--;
		if (s[2 + len - 2] == '=')
			r--;
		if ((size_t)r > max)
			return -1;
		memcpy(out, tmp, r);
		return r;
	}
	return -1;
}

void
chap_encode_hex(const uint8_t *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	*out++ = '0';
	*out++ = 'x';
	for (size_t i = 0; i < n; i++) {
		*out++ = hex[b[i] >> 4];
		*out++ = hex[b[i] & 15];
	}
	*out = '\0';
}

bool
chap_verify(const struct chap_state *cs, const char *secret, size_t secret_len,
	    const uint8_t *resp, size_t resp_len)
{
	uint8_t want[64];
	unsigned len = chap_digest_len(cs->alg);

	if (len == 0 || resp_len != len ||
	    chap_response(cs->alg, cs->id, secret, secret_len, cs->challenge,
			  cs->challenge_len, want) < 0)
		return false;
	return CRYPTO_memcmp(want, resp, len) == 0;
}

bool
chap_challenge_acceptable(const struct chap_state *cs, const uint8_t *c,
			  size_t len)
{
	uint8_t key[32] = { 0 };

	if (len < 16 || len > 1024)
		return false;	/* too weak, or absurd */
	/* Reflection: our own challenge sent back. */
	if (len == cs->challenge_len && !memcmp(c, cs->challenge, len))
		return false;
	/* Replay: the same challenge as an earlier login (compared by a
	 * digest of it, so long challenges cost little to keep). */
	if (chap_response(7, 0, "", 0, c, len, key) < 0)
		return false;
	for (unsigned i = 0; i < seen_count; i++)
		if (!memcmp(seen[i], key, sizeof key))
			return false;
	memcpy(seen[seen_next], key, sizeof key);
	seen_next = (seen_next + 1) % SEEN_MAX;
	if (seen_count < SEEN_MAX)
		seen_count++;
	return true;
}
