/* sbc.c: SBC-3/SBC-4 block commands.  Owns LBA/length checks and the
 * mapping of CDBs to backend requests (read, write with FUA when WCE is
 * off, flush of a range, zero, trim, compare), which sbc-io.c runs.
 * Sense bytes belong to sense.c, SANITIZE to sanitize.c, START STOP UNIT
 * and PREVENT ALLOW MEDIUM REMOVAL to medium.c.  Handlers run on the
 * loop thread.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi.h"
#include "sbc-io.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "util/util.h"

/* Decode LBA and transfer length of READ/WRITE/VERIFY-shaped CDBs. */
static void
decode_rw(const uint8_t *c, uint64_t *lba, uint32_t *nb)
{
	switch (c[0] >> 5) {
	case 0:	/* 6-byte */
		*lba = get_be24(c + 1) & 0x1fffff;
		*nb = c[4] ? c[4] : (c[0] == 0x08 || c[0] == 0x0a ? 256 : 0);
		break;
	case 1: case 2:	/* 10-byte */
		*lba = get_be32(c + 2);
		*nb = get_be16(c + 7);
		break;
	case 5:	/* 12-byte */
		*lba = get_be32(c + 2);
		*nb = get_be32(c + 6);
		break;
	default: /* 16-byte */
		*lba = get_be64(c + 2);
		*nb = get_be32(c + 10);
		break;
	}
}

/* Shared checks: returns false with sense set when the range is bad. */
static bool
check_range(struct scsi_cmd *cmd, uint64_t lba, uint64_t nb)
{
	struct lun *l = cmd->lun;

	if (lba > l->nblocks || nb > l->nblocks - lba) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return false;
	}
	return true;
}

static bool
check_xfer(struct scsi_cmd *cmd, uint32_t nb, unsigned len_byte)
{
	if ((uint64_t)nb << cmd->lun->block_shift > SCSI_MAX_XFER) {
		scsi_invalid_field(cmd, len_byte, -1);
		return false;
	}
	return true;
}

static unsigned
len_byte(const uint8_t *c)
{
	switch (c[0] >> 5) {
	case 0: return 4;
	case 1: case 2: return 7;
	case 5: return 6;
	default: return 10;
	}
}

int
sbc_read(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba;
	uint32_t nb, len;

	decode_rw(c, &lba, &nb);
	if (c[0] != 0x08 && (c[1] & 0xe0)) {	/* RDPROTECT: no PI here */
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb) || !check_xfer(cmd, nb, len_byte(c)))
		return SCSI_DONE;
	cmd->xfer_len = nb << l->block_shift;
	len = MIN(cmd->xfer_len, cmd->edtl);
	if (len == 0)
		return SCSI_DONE;
	if (l->be->can_read_fd && sbc_read_inline(cmd, lba << l->block_shift, len))
		return SCSI_DONE;
	return sbc_submit(cmd, IO_READ, lba << l->block_shift, len, 0);
}

static uint32_t
write_flags(struct scsi_cmd *cmd)
{
	/* WRITE(6) has no FUA bit; in WRITE SAME(10/16) and UNMAP that
	 * bit is UNMAP or ANCHOR, not FUA. */
	bool fua = cmd->cdb[0] != 0x0a && cmd->cdb[0] != 0x41 &&
		   cmd->cdb[0] != 0x93 && cmd->cdb[0] != 0x42 &&
		   (cmd->cdb[1] & 0x08);

	/* WCE off: every write is stable before its status (SBC-4 §4.15). */
	if (fua || !__atomic_load_n(&cmd->lun->wce, __ATOMIC_RELAXED))
		return IGW_FLAG_FUA;
	return 0;
}

/* Write (op IO_WRITE or IO_ORWRITE) what the initiator sent.  With fewer
 * bytes than the CDB describes (EDTL overflow, RFC 7143 §11.4.5.2) just
 * those bytes are written, the transport reports the residual, and the
 * blocks beyond them are not touched; a Data-Out that ends inside a block
 * takes write_tail.  With no Data-Out at all nothing is written. */
static int
write_blocks(struct scsi_cmd *cmd, int op, uint64_t lba, uint32_t flags)
{
	struct lun *l = cmd->lun;
	uint32_t len = cmd->xfer_len;

	if (cmd->edtl < len) {
		len = cmd->edtl;
		if (len == 0)
			return SCSI_DONE;
		if (len & (l->block_size - 1))
			return sbc_submit(cmd, op == IO_ORWRITE ? IO_ORWRITE_TAIL :
				      IO_WRITE_TAIL, lba << l->block_shift,
				      len, flags);
	}
	return sbc_submit(cmd, op, lba << l->block_shift, len, flags);
}

/* The checks WRITE, WRITE AND VERIFY and ORWRITE share: the protection
 * field (bits 7-5 of byte 1; WRITE(6) has none), range, transfer length.
 * False when the command is done (refused, or no blocks to write). */
static bool
write_checks(struct scsi_cmd *cmd, uint64_t *lba)
{
	const uint8_t *c = cmd->cdb;
	uint32_t nb;

	decode_rw(c, lba, &nb);
	if (c[0] != 0x0a && (c[1] & 0xe0)) {	/* WR/ORPROTECT */
		scsi_invalid_field(cmd, 1, 7);
		return false;
	}
	if (!check_range(cmd, *lba, nb) || !check_xfer(cmd, nb, len_byte(c)))
		return false;
	cmd->xfer_len = nb << cmd->lun->block_shift;
	return cmd->xfer_len != 0;
}

int
sbc_write(struct scsi_cmd *cmd)
{
	uint64_t lba;

	if (!write_checks(cmd, &lba))
		return SCSI_DONE;
	return write_blocks(cmd, IO_WRITE, lba, write_flags(cmd));
}

int
sbc_write_verify(struct scsi_cmd *cmd)
{
	uint64_t lba;

	if (!write_checks(cmd, &lba))
		return SCSI_DONE;
	/* Verification against the medium: the write is made stable. */
	return write_blocks(cmd, IO_WRITE, lba, IGW_FLAG_FUA);
}

/* ORWRITE(16) (SBC-4 §5.12): the Data-Out is ORed into the blocks (BMOP
 * 000b, the only operation of the 16-byte CDB).  Checked as WRITE(16) is;
 * ORPROTECT, like WRPROTECT, must be zero. */
int
sbc_orwrite(struct scsi_cmd *cmd)
{
	uint64_t lba;

	if (!write_checks(cmd, &lba))
		return SCSI_DONE;
	return write_blocks(cmd, IO_ORWRITE, lba, write_flags(cmd));
}

bool
sbc_atomic_avail(const struct lun *l)
{
	return l->be->can_atomic;
}

uint32_t
sbc_atomic_max(const struct lun *l)
{
	if (!sbc_atomic_avail(l))
		return 0;
	return MIN(SCSI_MAX_ATOMIC, SCSI_MAX_XFER) >> l->block_shift;
}

/* WRITE ATOMIC(16) (SBC-4 §5.48), on LUNs whose backend writes cannot be
 * torn by a crash (sbc_atomic_avail; the others answer INVALID COMMAND
 * OPERATION CODE from the dispatcher).  Within the Block Limits VPD page:
 * at most sbc_atomic_max blocks, no alignment or granularity, and no
 * ATOMIC BOUNDARY (its maxima are reported as zero).  All or nothing, so
 * unlike WRITE a Data-Out shorter than the CDB describes writes nothing. */
int
sbc_write_atomic(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba = get_be64(c + 2);
	uint32_t nb = get_be16(c + 12);

	if (c[1] & 0xe0) {	/* WRPROTECT */
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (get_be16(c + 10)) {	/* ATOMIC BOUNDARY */
		scsi_invalid_field(cmd, 10, -1);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	if (nb > sbc_atomic_max(l)) {
		scsi_invalid_field(cmd, 12, -1);
		return SCSI_DONE;
	}
	cmd->xfer_len = nb << l->block_shift;
	if (nb == 0)
		return SCSI_DONE;
	if (cmd->edtl < cmd->xfer_len) {
		scsi_invalid_field(cmd, 12, -1);
		return SCSI_DONE;
	}
	return sbc_submit(cmd, IO_WRITE_ATOMIC, lba << l->block_shift,
		      cmd->xfer_len, write_flags(cmd));
}

int
sbc_verify(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	unsigned bytchk = (c[1] >> 1) & 0x03;
	uint64_t lba;
	uint32_t nb;

	decode_rw(c, &lba, &nb);
	if (c[1] & 0xe0) {	/* VRPROTECT */
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (bytchk == 2) {
		scsi_invalid_field(cmd, 1, 2);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb) || !check_xfer(cmd, nb, len_byte(c)))
		return SCSI_DONE;
	if (nb == 0 || bytchk == 0)
		return SCSI_DONE;
	cmd->xfer_len = bytchk == 3 ? l->block_size : nb << l->block_shift;
	if (cmd->edtl < cmd->xfer_len) {
		scsi_invalid_field(cmd, len_byte(c), -1);
		return SCSI_DONE;
	}
	if (bytchk == 3) {
		sbc_submit(cmd, IO_COMPARE_EACH, lba << l->block_shift,
		       nb << l->block_shift, 0);
		return SCSI_ASYNC;
	}
	return sbc_submit(cmd, IO_COMPARE, lba << l->block_shift,
		      nb << l->block_shift, 0);
}

int
sbc_read_capacity10(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint8_t d[8];

	if (!(c[8] & 0x01) && get_be32(c + 2)) {	/* LBA without PMI */
		scsi_invalid_field(cmd, 2, -1);
		return SCSI_DONE;
	}
	put_be32(d, (uint32_t)MIN(l->nblocks - 1, 0xffffffffULL));
	put_be32(d + 4, l->block_size);
	return spc_put_data(cmd, d, sizeof d, sizeof d);
}

static int
read_capacity16(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint8_t d[32] = { 0 };
	unsigned exp = 0;

	if (l->be->pref_physical > l->block_size) {
		uint32_t ratio = l->be->pref_physical / l->block_size;
		while ((1u << exp) < ratio && exp < 15)
			exp++;
	}
	put_be64(d, l->nblocks - 1);
	put_be32(d + 8, l->block_size);
	d[13] = exp;
	if (l->thin && l->be->can_trim)
		d[14] = 0x80 | 0x40;	/* LBPME, LBPRZ */
	return spc_put_data(cmd, d, sizeof d, get_be32(c + 10));
}

static int
get_lba_status(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba = get_be64(c + 2);
	uint32_t alloc = get_be32(c + 10);
	uint32_t ndesc;

	if (!(l->thin && l->be->can_trim)) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (lba >= l->nblocks) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return SCSI_DONE;
	}
	if (alloc < 24) {
		/* Room for the header and no descriptor: just the header. */
		uint8_t d[8] = { 0 };
		put_be32(d, 4);
		return spc_put_data(cmd, d, 8, alloc);
	}
	ndesc = MIN((alloc - 8) / 16, LBA_STATUS_MAX_DESC);
	return sbc_submit(cmd, IO_LBA_STATUS, lba << l->block_shift, ndesc, 0);
}

int
sbc_service_action_in(struct scsi_cmd *cmd)
{
	switch (cmd->cdb[1] & 0x1f) {
	case 0x10:
		return read_capacity16(cmd);
	case 0x12:
		return get_lba_status(cmd);
	default:
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
}

int
sbc_synchronize_cache(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba, nb;

	if (c[0] == 0x35) {
		lba = get_be32(c + 2);
		nb = get_be16(c + 7);
	} else {
		lba = get_be64(c + 2);
		nb = get_be32(c + 10);
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	/* nb 0: from lba to the end.  IMMED is honoured by finishing first,
	 * which is never wrong.  Lengths past 4 GiB flush to the end. */
	if ((nb << l->block_shift) > 0xffffffffULL)
		nb = 0;
	return sbc_submit(cmd, IO_FLUSH, lba << l->block_shift,
		      (uint32_t)(nb << l->block_shift), 0);
}

/* READ DEFECT DATA(10) and (12) (SBC-4).  A gateway LUN has no medium and
 * no defects: the answer is the header of an empty list.  An empty list
 * reads the same in every address descriptor format, so it is returned in
 * the format asked for, with PLISTV and GLISTV set for the lists asked for
 * (they are returned, empty); a reserved format (111b) is refused.  The
 * ADDRESS DESCRIPTOR INDEX of the 12-byte CDB is at or past the end of an
 * empty list: no descriptor either way. */
int
sbc_read_defect_data(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	bool twelve = c[0] == 0xb7;
	unsigned fbyte = twelve ? 1 : 2;
	uint8_t d[8] = { 0 };

	if ((c[fbyte] & 0x07) == 0x07) {
		scsi_invalid_field(cmd, fbyte, 2);
		return SCSI_DONE;
	}
	/* PLISTV, GLISTV and DEFECT LIST FORMAT sit where REQ_PLIST,
	 * REQ_GLIST and DEFECT LIST FORMAT sit in the CDB; the DEFECT LIST
	 * LENGTH is zero. */
	d[1] = c[fbyte] & 0x1f;
	if (twelve)
		return spc_put_data(cmd, d, 8, get_be32(c + 6));
	return spc_put_data(cmd, d, 4, get_be16(c + 7));
}

int
sbc_prefetch(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint64_t lba, nb;

	if (c[0] == 0x34) {
		lba = get_be32(c + 2);
		nb = get_be16(c + 7);
	} else {
		lba = get_be64(c + 2);
		nb = get_be32(c + 10);
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	return SCSI_DONE;
}

int
sbc_write_same(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	bool sixteen = c[0] == 0x93;
	bool unmap = c[1] & 0x08, anchor = c[1] & 0x10;
	bool ndob = sixteen && (c[1] & 0x01);
	uint64_t lba = sixteen ? get_be64(c + 2) : get_be32(c + 2);
	uint64_t nb = sixteen ? get_be32(c + 10) : get_be16(c + 7);
	bool lbp = l->thin && l->be->can_trim;

	if (c[1] & 0xe0) {
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (anchor) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (unmap && !lbp) {
		/* SBC-4 §5.49: UNMAP without logical block provisioning. */
		scsi_invalid_field(cmd, 1, 3);
		return SCSI_DONE;
	}
	if (nb == 0)	/* WSNZ = 0: zero means to the end */
		nb = lba < l->nblocks ? l->nblocks - lba : 0;
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	if (nb > 0xffffffffULL) {
		scsi_invalid_field(cmd, sixteen ? 10 : 7, -1);
		return SCSI_DONE;
	}
	cmd->xfer_len = ndob ? 0 : l->block_size;
	/* The Data-Out is one logical block.  Another length means the
	 * initiator has another block size in mind, and replicating what
	 * it sent over the range would write a pattern it never meant:
	 * refused both ways, as COMPARE AND WRITE refuses. */
	if (!ndob && cmd->edtl != l->block_size) {
		scsi_invalid_field(cmd, sixteen ? 10 : 7, -1);
		return SCSI_DONE;
	}
	if (nb == 0)
		return SCSI_DONE;
	bool zero = ndob;
	if (!zero) {
		zero = true;
		for (uint32_t i = 0; i < l->block_size; i++)
			if (cmd->buf[i]) {
				zero = false;
				break;
			}
	}
	/* SBC-3 §5.43: with UNMAP set the blocks are unmapped, whatever the
	 * data; LBPRZ=1 says they then read as zero. */
	if (unmap && lbp)
		return sbc_submit(cmd, IO_ZERO, lba << l->block_shift,
			      (uint32_t)nb, IGW_FLAG_MAY_TRIM | write_flags(cmd));
	if (zero)
		return sbc_submit(cmd, IO_ZERO, lba << l->block_shift,
			      (uint32_t)nb, write_flags(cmd));
	return sbc_submit(cmd, IO_WRITE_SAME, lba << l->block_shift, (uint32_t)nb,
		      write_flags(cmd));
}

int
sbc_unmap(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint32_t plen = get_be16(c + 7);
	const uint8_t *p = cmd->buf;
	uint32_t bdl, n;

	if (!(l->thin && l->be->can_trim)) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_INVALID_COMMAND_OPERATION_CODE);
		return SCSI_DONE;
	}
	cmd->xfer_len = plen;
	if (c[1] & 0x01) {	/* ANCHOR */
		scsi_invalid_field(cmd, 1, 0);
		return SCSI_DONE;
	}
	if (plen == 0)
		return SCSI_DONE;
	if (plen < 8 || plen > cmd->edtl) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAMETER_LIST_LENGTH_ERROR);
		return SCSI_DONE;
	}
	bdl = get_be16(p + 2);
	if (bdl > plen - 8)
		bdl = (plen - 8) & ~15u;
	n = bdl / 16;
	if (n > 256) {
		scsi_invalid_param(cmd, 2, -1);
		return SCSI_DONE;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t lba = get_be64(p + 8 + 16 * i);
		uint32_t nb = get_be32(p + 8 + 16 * i + 8);
		if (!check_range(cmd, lba, nb))
			return SCSI_DONE;
	}
	if (n == 0)
		return SCSI_DONE;
	return sbc_submit(cmd, IO_UNMAP, 0, n, write_flags(cmd));
}

uint32_t
scsi_cmd_out_len(const struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba, n = 0;
	uint32_t nb;

	if (!l)
		return cmd->edtl;
	switch (c[0]) {
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:	/* WRITE */
	case 0x2e: case 0xae: case 0x8e:		/* WRITE AND VERIFY */
	case 0x8b:					/* ORWRITE(16) */
		decode_rw(c, &lba, &nb);
		n = (uint64_t)nb << l->block_shift;
		break;
	case 0x9c:					/* WRITE ATOMIC(16) */
		n = (uint64_t)get_be16(c + 12) << l->block_shift;
		break;
	case 0x2f: case 0xaf: case 0x8f:		/* VERIFY */
		decode_rw(c, &lba, &nb);
		switch ((c[1] >> 1) & 3) {
		case 1: n = (uint64_t)nb << l->block_shift; break;
		case 3: n = nb ? l->block_size : 0; break;
		default: n = 0;
		}
		break;
	case 0x41:					/* WRITE SAME(10) */
		n = l->block_size;
		break;
	case 0x93:					/* WRITE SAME(16) */
		n = (c[1] & 0x01) ? 0 : l->block_size;
		break;
	case 0x89:			/* COMPARE AND WRITE */
		n = 2 * ((uint64_t)c[13] << l->block_shift);
		break;
	case 0x42: case 0x48: case 0x55: /* UNMAP, SANITIZE, MODE SELECT(10) */
		n = get_be16(c + 7);
		break;
	case 0x15:			/* MODE SELECT(6) */
		n = c[4];
		break;
	case 0x5f:			/* PERSISTENT RESERVE OUT */
		n = get_be32(c + 5);
		break;
	case 0x83:			/* EXTENDED COPY */
		n = get_be32(c + 10);
		break;
	case 0x56: case 0x57:		/* RESERVE(10), RELEASE(10) */
		n = get_be16(c + 7);
		break;
	default:
		return cmd->edtl;
	}
	return (uint32_t)MIN(n, (uint64_t)cmd->edtl);
}

int
sbc_compare_and_write(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba = get_be64(c + 2);
	uint32_t nb = c[13];

	if (c[1] & 0xe0) {
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (nb > SCSI_MAX_CAW_BLOCKS) {
		scsi_invalid_field(cmd, 13, -1);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	cmd->xfer_len = 2 * (nb << l->block_shift);
	if (cmd->edtl != cmd->xfer_len) {
		/* The Data-Out buffer must hold exactly the verify and the
		 * write data (SBC-4 §5.3); a length byte that wrapped to 0
		 * under 256 blocks of data lands here too. */
		scsi_invalid_field(cmd, 13, -1);
		return SCSI_DONE;
	}
	if (nb == 0)
		return SCSI_DONE;
	return sbc_submit(cmd, IO_CAW, lba << l->block_shift, nb << l->block_shift,
		      write_flags(cmd));
}
