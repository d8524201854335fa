/* crc32c.h: CRC32C (Castagnoli), the iSCSI header and data digest
 * (RFC 7143 §11.1, Appendix A.4).  Uses the SSE4.2 crc32 instruction where
 * the CPU has it, else a slicing-by-8 table; both give the same result and
 * are tested against the RFC's examples.  Any thread.
 */
#ifndef IGW_CRC32C_H
#define IGW_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Start with crc = ~0, feed buffers, finish with ~crc (crc32c_value does
 * both for one buffer).  On the wire the digest is sent little-endian. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);
static inline uint32_t
crc32c_value(const void *buf, size_t len)
{
	return ~crc32c_update(~0u, buf, len);
}
/* The portable version, always (for tests). */
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len);
/* 1 when the hardware path is in use. */
int crc32c_hw(void);

#endif
