/* sense.c: sense data (SPC-4 §4.5) and the one table that turns a backend
 * errno into a sense key and ASC.  Runs on the loop thread.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "scsi.h"
#include "lunmap.h"
#include "util/util.h"

unsigned
scsi_build_sense(uint8_t *s, bool descriptor, uint8_t key, uint16_t asc)
{
	if (descriptor) {
		memset(s, 0, 8);
		s[0] = 0x72;
		s[1] = key;
		s[2] = asc >> 8;
		s[3] = asc & 0xff;
		s[7] = 0;
		return 8;
	}
	memset(s, 0, 18);
	s[0] = 0x70;
	s[2] = key;
	s[7] = 10;		/* additional sense length */
	s[12] = asc >> 8;
	s[13] = asc & 0xff;
	return 18;
}

void
scsi_set_sense(struct scsi_cmd *cmd, uint8_t key, uint16_t asc)
{
	cmd->status = SAM_STAT_CHECK_CONDITION;
	cmd->sense_len = scsi_build_sense(cmd->sense, false, key, asc);
}

void
scsi_set_sense_info(struct scsi_cmd *cmd, uint8_t key, uint16_t asc,
		    uint64_t info)
{
	scsi_set_sense(cmd, key, asc);
	cmd->sense[0] |= 0x80;	/* VALID: the information field is set */
	put_be32(cmd->sense + 3, (uint32_t)MIN(info, 0xffffffffULL));
}

static void
field_pointer(struct scsi_cmd *cmd, uint16_t asc, bool in_cdb, unsigned byte,
	      int bit)
{
	scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, asc);
	/* Sense-key specific: SKSV, C/D, BPV and bit pointer, field pointer. */
	cmd->sense[15] = 0x80 | (in_cdb ? 0x40 : 0) |
			 (bit >= 0 ? 0x08 | (bit & 7) : 0);
	put_be16(cmd->sense + 16, (uint16_t)byte);
}

void
scsi_invalid_field(struct scsi_cmd *cmd, unsigned byte, int bit)
{
	field_pointer(cmd, ASC_INVALID_FIELD_IN_CDB, true, byte, bit);
}

void
scsi_invalid_param(struct scsi_cmd *cmd, unsigned byte, int bit)
{
	field_pointer(cmd, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, byte,
		      bit);
}

static const struct {
	int err;
	uint8_t key;
	uint16_t read_asc, write_asc;
} errno_table[] = {
	{ .err = EIO, .key = SK_MEDIUM_ERROR,
	  .read_asc = ASC_UNRECOVERED_READ_ERROR, .write_asc = ASC_WRITE_ERROR },
	{ .err = ENOSPC, .key = SK_DATA_PROTECT,
	  .read_asc = ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT,
	  .write_asc = ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT },
	{ .err = EDQUOT, .key = SK_DATA_PROTECT,
	  .read_asc = ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT,
	  .write_asc = ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT },
	{ .err = EROFS, .key = SK_DATA_PROTECT,
	  .read_asc = ASC_WRITE_PROTECTED, .write_asc = ASC_WRITE_PROTECTED },
	{ .err = EPERM, .key = SK_DATA_PROTECT,
	  .read_asc = ASC_WRITE_PROTECTED, .write_asc = ASC_WRITE_PROTECTED },
	{ .err = ESHUTDOWN, .key = SK_NOT_READY,
	  .read_asc = ASC_LUN_NOT_READY, .write_asc = ASC_LUN_NOT_READY },
	{ .err = ENOTCONN, .key = SK_NOT_READY,
	  .read_asc = ASC_LUN_NOT_READY, .write_asc = ASC_LUN_NOT_READY },
	{ .err = ETIMEDOUT, .key = SK_NOT_READY,
	  .read_asc = ASC_LUN_NOT_READY, .write_asc = ASC_LUN_NOT_READY },
};

void
scsi_set_errno(struct scsi_cmd *cmd, int err, bool write)
{
	if (err < 0)
		err = -err;
	if (cmd->lun)
		__atomic_add_fetch(&cmd->lun->stat_errors, 1, __ATOMIC_RELAXED);
	if (err == ENOSPC && cmd->lun && !cmd->lun->thin) {
		/* A thick LUN cannot run out of space: it is a write error. */
		scsi_set_sense(cmd, SK_MEDIUM_ERROR, ASC_WRITE_ERROR);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(errno_table); i++)
		if (errno_table[i].err == err) {
			scsi_set_sense(cmd, errno_table[i].key,
				       write ? errno_table[i].write_asc :
					       errno_table[i].read_asc);
			return;
		}
	if (err == ENOMEM || err == EAGAIN) {
		cmd->status = SAM_STAT_BUSY;
		cmd->sense_len = 0;
		return;
	}
	scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
}
