/* xcopy-results.c: RECEIVE COPY RESULTS (SPC-4 §6.18: COPY STATUS of a
 * held list identifier, OPERATING PARAMETERS) and the Third-party Copy
 * VPD page (SPC-4 §7.8.17): what the copy manager (xcopy.c) reports of
 * its limits and of the copies it holds results of.  Loop thread.
 */
#include "config.h"

#include <string.h>

#include "scsi.h"
#include "xcopy-internal.h"
#include "util/util.h"

static int
copy_status(struct scsi_cmd *cmd, uint32_t alloc)
{
	struct xcopy_held *h = xcopy_held_find(cmd->nexus, cmd->cdb[2]);
	uint8_t d[12] = { 0 };
	uint64_t bytes;
	unsigned units = 0;

	if (!h) {		/* SPC-4 §6.18.3: no such held data */
		scsi_invalid_field(cmd, 2, 7);
		return SCSI_DONE;
	}
	put_be32(d, 8);
	if (h->running) {
		d[4] = CM_IN_PROGRESS;
		put_be16(d + 5, (uint16_t)__atomic_load_n(&h->running->segs_done,
							  __ATOMIC_RELAXED));
		bytes = __atomic_load_n(&h->running->bytes_done,
					__ATOMIC_RELAXED);
	} else {
		d[4] = h->status;
		put_be16(d + 5, h->segs_done);
		bytes = h->bytes_done;
	}
	/* TRANSFER COUNT UNITS: bytes, KiB, MiB... (SPC-4 table 357). */
	while (bytes >> (10 * units) > 0xffffffffULL)
		units++;
	d[7] = (uint8_t)units;
	put_be32(d + 8, (uint32_t)(bytes >> (10 * units)));
	/* A completed operation's held data goes once reported. */
	if (!h->running)
		h->used = false;
	return spc_put_data(cmd, d, sizeof d, alloc);
}

static int
operating_parameters(struct scsi_cmd *cmd, uint32_t alloc)
{
	static const uint8_t codes[] = { SEG_BLOCK_TO_BLOCK, CSCD_IDENT };
	uint8_t d[44 + sizeof codes] = { 0 };

	put_be32(d, sizeof d - 4);
	d[4] = 0x01;				/* SNLID: LIST ID USAGE 11b */
	put_be16(d + 8, XCOPY_MAX_CSCD);
	put_be16(d + 10, XCOPY_MAX_SEGS);
	put_be32(d + 12, XCOPY_MAX_DESC_LIST);
	put_be32(d + 16, XCOPY_MAX_SEG_BYTES);
	put_be32(d + 20, 0);			/* no inline data */
	put_be32(d + 24, 0);			/* no held data to read */
	put_be32(d + 28, 0);			/* no stream devices */
	put_be16(d + 34, XCOPY_HELD_MAX);	/* total concurrent copies */
	d[36] = XCOPY_HELD_MAX;			/* per I_T nexus */
	d[37] = 9;				/* data segment granularity */
	d[38] = 0;
	d[39] = 0;
	d[43] = sizeof codes;
	memcpy(d + 44, codes, sizeof codes);
	return spc_put_data(cmd, d, sizeof d, alloc);
}

int
spc_receive_copy_results(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint32_t alloc = get_be32(c + 10);

	switch (c[1] & 0x1f) {
	case RCR_COPY_STATUS:
		return copy_status(cmd, alloc);
	case RCR_OPERATING_PARAMETERS:
		return operating_parameters(cmd, alloc);
	default:
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
}

/* ---- Third-party Copy VPD page ---- */

int
spc_vpd_third_party_copy(struct scsi_cmd *cmd, uint32_t alloc)
{
	uint8_t d[4 + 12 + 8] = { 0 };
	uint8_t *p = d + 4;

	d[1] = 0x8f;
	put_be16(d + 2, sizeof d - 4);
	/* Supported Commands (0001h): EXTENDED COPY(LID1), RECEIVE COPY
	 * RESULTS COPY STATUS and OPERATING PARAMETERS. */
	put_be16(p, 0x0001);
	put_be16(p + 2, 8);
	p[4] = 7;
	p[5] = 0x83; p[6] = 1; p[7] = 0x00;
	p[8] = 0x84; p[9] = 2; p[10] = RCR_COPY_STATUS;
	p[11] = RCR_OPERATING_PARAMETERS;
	p += 12;
	/* Supported Descriptors (0004h). */
	put_be16(p, 0x0004);
	put_be16(p + 2, 4);
	p[4] = 2;
	p[5] = SEG_BLOCK_TO_BLOCK;
	p[6] = CSCD_IDENT;
	return spc_put_data(cmd, d, sizeof d, alloc);
}
