/* util.h: small helpers shared by every module: big-endian accessors for
 * wire formats, the one size parser, cleanup guards.  No state.
 */
#ifndef IGW_UTIL_H
#define IGW_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define container_of(ptr, type, member)                                       \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t get_be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}
static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}
static inline void put_be24(uint8_t *p, uint32_t v)
{
	p[0] = v >> 16;
	p[1] = v >> 8;
	p[2] = v;
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, (uint32_t)v);
}

/* Serial number arithmetic (RFC 1982), as RFC 7143 uses for CmdSN. */
static inline int sn_lt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) < 0;
}
static inline int sn_le(uint32_t a, uint32_t b)
{
	return a == b || sn_lt(a, b);
}

/* Parse "512", "64K", "1G", ... (powers of 1024).  Returns 0 or -1. */
int parse_size(const char *s, uint64_t *out);

/* Cleanup guards (nbdkit style). */
static inline void cleanup_free_fn(void *p)
{
	free(*(void **)p);
}
#define CLEANUP_FREE __attribute__((cleanup(cleanup_free_fn)))

static inline void cleanup_unlock_fn(pthread_mutex_t **m)
{
	pthread_mutex_unlock(*m);
}
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(m)                                     \
	pthread_mutex_t *_lock_##__LINE__                                     \
		__attribute__((cleanup(cleanup_unlock_fn))) = (m);            \
	pthread_mutex_lock(_lock_##__LINE__)

#endif
