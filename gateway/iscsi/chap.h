/* chap.h: CHAP primitives for login.c (see chap.c). */
#ifndef IGW_CHAP_H
#define IGW_CHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chap_state {
	int alg;			/* CHAP_A: 5 MD5, 7 SHA-256, 8 SHA3-256 */
	uint8_t id;			/* CHAP_I we sent */
	uint8_t challenge[32];		/* CHAP_C we sent */
	size_t challenge_len;
};

/* The first algorithm of the initiator's CHAP_A list that we support. */
int chap_pick_alg(const char *list);
unsigned chap_digest_len(int alg);
int chap_new_challenge(struct chap_state *cs, int alg);
int chap_response(int alg, uint8_t id, const char *secret, size_t secret_len,
		  const uint8_t *challenge, size_t clen, uint8_t *out);
/* "0x..." or "0b..." into out; returns the length or -1. */
int chap_decode(const char *s, uint8_t *out, size_t max);
/* out needs 2 * n + 3 bytes. */
void chap_encode_hex(const uint8_t *b, size_t n, char *out);
bool chap_verify(const struct chap_state *cs, const char *secret,
		 size_t secret_len, const uint8_t *resp, size_t resp_len);
/* An initiator's mutual challenge: long enough, not ours, never seen. */
bool chap_challenge_acceptable(const struct chap_state *cs, const uint8_t *c,
			       size_t len);

#endif
