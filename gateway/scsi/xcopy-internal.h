/* xcopy-internal.h: what the copy manager's two files share: xcopy.c
 * (EXTENDED COPY: the lists, the copy targets, the copy) and
 * xcopy-results.c (RECEIVE COPY RESULTS and the Third-party Copy VPD
 * page, which report its limits and its held results).  Loop thread
 * only, as both files are.
 */
#ifndef IGW_XCOPY_INTERNAL_H
#define IGW_XCOPY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "scsi.h"

/* Limits, reported by RECEIVE COPY RESULTS OPERATING PARAMETERS. */
#define XCOPY_MAX_CSCD 32
#define XCOPY_MAX_SEGS 32
#define XCOPY_MAX_DESC_LIST 1536	/* CSCD + segment lists, bytes */
#define XCOPY_MAX_SEG_BYTES (256u << 20)	/* 65535 blocks of 4096 */
#define XCOPY_CHUNK (1u << 20)
#define XCOPY_HELD_MAX 16		/* held results per I_T nexus */

/* Descriptor type codes (SPC-4 table 110 and 119). */
#define SEG_BLOCK_TO_BLOCK 0x02
#define CSCD_IDENT 0xe4

/* RECEIVE COPY RESULTS service actions. */
#define RCR_COPY_STATUS 0x00
#define RCR_OPERATING_PARAMETERS 0x03

/* COPY MANAGER STATUS (SPC-4 table 356). */
#define CM_IN_PROGRESS 0x00
#define CM_GOOD 0x01
#define CM_ERRORS 0x02

struct xcopy_seg {
	struct lun *src, *dst;
	uint64_t src_off, dst_off;	/* bytes */
	uint64_t len;			/* bytes */
	unsigned src_gen, dst_gen;	/* reset_gen when submitted */
};

struct xcopy_job {
	struct io_job job;
	struct xcopy_job *qnext;	/* copy_q_*, loop thread */
	struct scsi_cmd *cmd;
	struct xcopy_seg segs[XCOPY_MAX_SEGS];
	unsigned nsegs;
	struct lun *refs[2 * XCOPY_MAX_SEGS];	/* one lun_get each */
	unsigned nrefs;
	uint8_t list_id;
	bool hold;
	/* Set by the worker, read on the loop thread after it (or, for a
	 * COPY STATUS while the copy runs, atomically). */
	int result;
	bool write_failed;
	unsigned segs_done;
	uint64_t bytes_done;
};

/* Held results of one list identifier (LIST ID USAGE 00b). */
struct xcopy_held {
	uint8_t list_id;
	bool used;
	struct xcopy_job *running;	/* NULL once complete */
	uint8_t status;			/* CM_* once complete */
	uint16_t segs_done;
	uint64_t bytes_done;
	uint64_t seq;			/* age, for reuse */
};

struct xcopy_nexus {
	struct xcopy_held held[XCOPY_HELD_MAX];
	uint64_t seq;
};

/* xcopy.c */
/* The held results of list_id on nexus n, NULL when there are none. */
struct xcopy_held *xcopy_held_find(struct scsi_nexus *n, uint8_t list_id);

#endif
