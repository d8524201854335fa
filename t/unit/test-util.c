/* test-util.c: util/util.h (size parser, big-endian accessors, serial
 * number arithmetic) and log_escape from log.h. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "util/util.h"
#include "util/crc32c.h"
#include "log.h"

/* parse_size: returns the value, and checks the call succeeded. */
#define CHECK_SIZE(str, want)                                                 \
	do {                                                                  \
		uint64_t v_ = 0xdeadbeef;                                     \
		CHECK_EQ_INT(parse_size((str), &v_), 0);                      \
		CHECK_EQ_UINT(v_, (want));                                    \
	} while (0)

#define CHECK_SIZE_BAD(str)                                                   \
	do {                                                                  \
		uint64_t v_ = 0xdeadbeef;                                     \
		CHECK_EQ_INT(parse_size((str), &v_), -1);                     \
		CHECK_EQ_UINT(v_, 0xdeadbeef); /* untouched on error */       \
	} while (0)

TEST(parse_size_valid)
{
	CHECK_SIZE("0", 0);
	CHECK_SIZE("512", 512);
	CHECK_SIZE("64K", 64 * 1024);
	CHECK_SIZE("64k", 64 * 1024);
	CHECK_SIZE("1M", 1024 * 1024);
	CHECK_SIZE("16M", 16ULL << 20);
	CHECK_SIZE("1G", 1ULL << 30);
	CHECK_SIZE("1g", 1ULL << 30);
	CHECK_SIZE("1GiB", 1ULL << 30);
	CHECK_SIZE("1GB", 1ULL << 30);
	CHECK_SIZE("2T", 2ULL << 40);
	CHECK_SIZE("3P", 3ULL << 50);
	/* The largest value each form can hold. */
	CHECK_SIZE("16383P", 16383ULL << 50);
	CHECK_SIZE("18446744073709551615", UINT64_MAX);
}

TEST(parse_size_invalid)
{
	CHECK_SIZE_BAD("");
	CHECK_SIZE_BAD("G");
	CHECK_SIZE_BAD("-1");
	CHECK_SIZE_BAD("+1");
	CHECK_SIZE_BAD(" 1");
	CHECK_SIZE_BAD("1 ");
	CHECK_SIZE_BAD("1X");
	CHECK_SIZE_BAD("1.5G");
	CHECK_SIZE_BAD("1GG");
	CHECK_SIZE_BAD("1GiBx");
	CHECK_SIZE_BAD("1iB");	/* "iB" only after a suffix */
	CHECK_SIZE_BAD("1B");
	CHECK_SIZE_BAD("0x10");
	/* Overflow: of the shift, and of strtoull itself. */
	CHECK_SIZE_BAD("99999999999P");
	CHECK_SIZE_BAD("16384P");
	CHECK_SIZE_BAD("16777216T");
	CHECK_SIZE_BAD("18446744073709551616");
	CHECK_SIZE_BAD("99999999999999999999999");
	CHECK_EQ_INT(parse_size(NULL, &(uint64_t){ 0 }), -1);
}

TEST(be16_round_trip)
{
	uint8_t b[4] = { 0xaa, 0xaa, 0xaa, 0xaa };
	static const uint8_t want[] = { 0xaa, 0x12, 0x34, 0xaa };

	put_be16(b + 1, 0x1234);
	CHECK_MEM(b, want, 4);
	CHECK_EQ_UINT(get_be16(b + 1), 0x1234);
	put_be16(b, 0xffff);
	CHECK_EQ_UINT(get_be16(b), 0xffff);
	put_be16(b, 0x8001);
	CHECK_EQ_UINT(b[0], 0x80);
	CHECK_EQ_UINT(b[1], 0x01);
	CHECK_EQ_UINT(get_be16(b), 0x8001);
}

TEST(be24_round_trip)
{
	uint8_t b[5] = { 0xaa, 0xaa, 0xaa, 0xaa, 0xaa };
	static const uint8_t want[] = { 0xaa, 0x12, 0x34, 0x56, 0xaa };

	put_be24(b + 1, 0x123456);
	CHECK_MEM(b, want, 5);
	CHECK_EQ_UINT(get_be24(b + 1), 0x123456);
	/* Only the low 24 bits are stored. */
	put_be24(b + 1, 0xff808182);
	CHECK_EQ_UINT(get_be24(b + 1), 0x808182);
	CHECK_EQ_UINT(b[0], 0xaa);
	CHECK_EQ_UINT(b[4], 0xaa);
}

TEST(be32_round_trip)
{
	uint8_t b[6] = { 0 };
	static const uint8_t want[] = { 0, 0xde, 0xad, 0xbe, 0xef, 0 };

	put_be32(b + 1, 0xdeadbeef);
	CHECK_MEM(b, want, 6);
	CHECK_EQ_UINT(get_be32(b + 1), 0xdeadbeef);
	/* High bit set: no sign extension. */
	put_be32(b, 0x80000000);
	CHECK_EQ_UINT(get_be32(b), 0x80000000u);
	put_be32(b, 0xffffffff);
	CHECK_EQ_UINT(get_be32(b), 0xffffffffu);
}

TEST(be64_round_trip)
{
	uint8_t b[10] = { 0 };
	static const uint8_t want[] = { 0, 0x01, 0x23, 0x45, 0x67, 0x89,
					0xab, 0xcd, 0xef, 0 };
	static const uint64_t vals[] = { 0, 1, 0xff, 0x100000000ULL,
					 0x8000000000000000ULL, UINT64_MAX,
					 0x0123456789abcdefULL };

	put_be64(b + 1, 0x0123456789abcdefULL);
	CHECK_MEM(b, want, 10);
	CHECK_EQ_UINT(get_be64(b + 1), 0x0123456789abcdefULL);
	for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
		put_be64(b, vals[i]);
		CHECK_EQ_UINT(get_be64(b), vals[i]);
	}
}

TEST(sn_arithmetic)
{
	CHECK(sn_lt(1, 2));
	CHECK(!sn_lt(2, 1));
	CHECK(!sn_lt(5, 5));
	CHECK(sn_le(5, 5));
	CHECK(sn_le(1, 2));
	CHECK(!sn_le(2, 1));
	/* Wrap-around: 0xffffffff comes before 0 (RFC 1982 §3.2). */
	CHECK(sn_lt(0xffffffffu, 0));
	CHECK(!sn_lt(0, 0xffffffffu));
	CHECK(sn_le(0xffffffffu, 0));
	CHECK(!sn_le(0, 0xffffffffu));
	CHECK(sn_lt(0xfffffff0u, 0x10));
	CHECK(!sn_lt(0x10, 0xfffffff0u));
	/* Just under half the space apart is still ordered. */
	CHECK(sn_lt(0, 0x7fffffffu));
	CHECK(!sn_lt(0x7fffffffu, 0));
	CHECK(sn_lt(0x80000000u, 0xffffffffu));
	CHECK(sn_lt(0xc0000000u, 0x3fffffffu));
	CHECK(!sn_lt(0x3fffffffu, 0xc0000000u));
}

TEST(log_escape_plain)
{
	char buf[64];

	CHECK(log_escape(buf, sizeof buf, "iqn.2026-01.x:y", 15) == buf);
	CHECK_EQ_STR(buf, "iqn.2026-01.x:y");
	log_escape(buf, sizeof buf, "", 0);
	CHECK_EQ_STR(buf, "");
	/* len bounds the input; an embedded NUL ends it too. */
	log_escape(buf, sizeof buf, "abcdef", 3);
	CHECK_EQ_STR(buf, "abc");
	log_escape(buf, sizeof buf, "ab\0cd", 5);
	CHECK_EQ_STR(buf, "ab");
	log_escape(buf, sizeof buf, " ~", 2);
	CHECK_EQ_STR(buf, " ~");
}

TEST(log_escape_escapes)
{
	char buf[64];

	log_escape(buf, sizeof buf, "a\nb", 3);
	CHECK_EQ_STR(buf, "a\\x0ab");
	log_escape(buf, sizeof buf, "\x1b[31m", 5);
	CHECK_EQ_STR(buf, "\\x1b[31m");
	log_escape(buf, sizeof buf, "\x7f", 1);
	CHECK_EQ_STR(buf, "\\x7f");
	log_escape(buf, sizeof buf, "\x80\xff", 2);
	CHECK_EQ_STR(buf, "\\x80\\xff");
	log_escape(buf, sizeof buf, "caf\xc3\xa9", 5);
	CHECK_EQ_STR(buf, "caf\\xc3\\xa9");
	/* A backslash is escaped so the output is unambiguous. */
	log_escape(buf, sizeof buf, "a\\x41", 5);
	CHECK_EQ_STR(buf, "a\\x5cx41");
	log_escape(buf, sizeof buf, "\t\r", 2);
	CHECK_EQ_STR(buf, "\\x09\\x0d");
}

TEST(log_escape_truncation)
{
	char buf[16];

	memset(buf, 'Z', sizeof buf);
	log_escape(buf, 4, "abcdef", 6);
	CHECK_EQ_STR(buf, "abc");
	CHECK_EQ_INT(buf[4], 'Z');	/* nothing written past bufsz */

	/* An escape is never cut in half: it needs 4 bytes plus the NUL. */
	memset(buf, 'Z', sizeof buf);
	log_escape(buf, 5, "\n", 1);
	CHECK_EQ_STR(buf, "\\x0a");
	memset(buf, 'Z', sizeof buf);
	log_escape(buf, 4, "\n", 1);
	CHECK_EQ_STR(buf, "");
	CHECK_EQ_INT(buf[1], 'Z');
	memset(buf, 'Z', sizeof buf);
	log_escape(buf, 6, "ab\ncd", 5);
	CHECK_EQ_STR(buf, "ab");
	memset(buf, 'Z', sizeof buf);
	log_escape(buf, 7, "ab\ncd", 5);
	CHECK_EQ_STR(buf, "ab\\x0a");

	memset(buf, 'Z', sizeof buf);
	log_escape(buf, 1, "abc", 3);
	CHECK_EQ_INT(buf[0], '\0');
	CHECK_EQ_INT(buf[1], 'Z');
	/* bufsz 0: nothing written at all. */
	memset(buf, 'Z', sizeof buf);
	CHECK(log_escape(buf, 0, "abc", 3) == buf);
	CHECK_EQ_INT(buf[0], 'Z');

	/* A long hostile name always ends NUL-terminated within the buffer. */
	{
		char big[300];
		char out[64];
		for (size_t i = 0; i < sizeof big; i++)
			big[i] = (char)(i % 3 ? 0x01 : 'x');
		memset(out, 'Z', sizeof out);
		log_escape(out, sizeof out, big, sizeof big);
		CHECK(memchr(out, '\0', sizeof out) != NULL);
		CHECK(strlen(out) <= sizeof out - 1);
		CHECK(strlen(out) >= sizeof out - 5);
	}
}

/* RFC 7143 Appendix A.4 (B.4 in RFC 3720): CRC32C examples.  The RFC
 * lists the digest bytes as sent, little-endian. */
static void
check_crc(const uint8_t *buf, size_t len, uint32_t want)
{
	CHECK_EQ_UINT(crc32c_value(buf, len), want);
	CHECK_EQ_UINT(~crc32c_update_sw(~0u, buf, len), want);
	/* Fed in pieces, the same value. */
	uint32_t c = ~0u;
	for (size_t i = 0; i < len; i += 5)
		c = crc32c_update(c, buf + i, len - i < 5 ? len - i : 5);
	CHECK_EQ_UINT(~c, want);
}

TEST(crc32c_rfc_vectors)
{
	uint8_t b[48];

	memset(b, 0, 32);
	check_crc(b, 32, 0x8a9136aa);
	memset(b, 0xff, 32);
	check_crc(b, 32, 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = i;
	check_crc(b, 32, 0x46dd794e);
	for (int i = 0; i < 32; i++)
		b[i] = 31 - i;
	check_crc(b, 32, 0x113fdb5c);
}

TEST(crc32c_hw_matches_sw)
{
	uint8_t buf[4099];
	uint32_t x = 12345;

	for (size_t i = 0; i < sizeof buf; i++) {
		x = x * 1103515245 + 12345;
		buf[i] = x >> 16;
	}
	for (size_t len = 0; len < sizeof buf; len += 97)
		CHECK_EQ_UINT(crc32c_update(~0u, buf + 1, len - (len ? 1 : 0)),
			      crc32c_update_sw(~0u, buf + 1, len - (len ? 1 : 0)));
	printf("# crc32c: %s\n", crc32c_hw() ? "SSE4.2 instruction" :
	       "portable table");
}

int
main(int argc, char **argv)
{
	return harness_run(argc, argv);
}
