/* sbc-io.h: what the block command handlers (sbc.c) ask of the IO
 * engine (sbc-io.c): the backend request a command becomes, and the
 * calls that run it.
 */
#ifndef IGW_SBC_IO_H
#define IGW_SBC_IO_H

#include <stdbool.h>
#include <stdint.h>

struct scsi_cmd;

enum io_op {
	IO_READ = 1,
	IO_WRITE,
	IO_FLUSH,
	IO_COMPARE,		/* read and compare with cmd->buf */
	IO_COMPARE_EACH,	/* compare one block with every block */
	IO_WRITE_SAME,		/* replicate the first block */
	IO_ZERO,
	IO_TRIM,
	IO_UNMAP,		/* descriptors in cmd->buf */
	IO_CAW,			/* COMPARE AND WRITE */
	IO_LBA_STATUS,		/* GET LBA STATUS: extents into a buffer */
	IO_ORWRITE,		/* ORWRITE: read, OR cmd->buf in, write */
	IO_WRITE_ATOMIC,	/* WRITE ATOMIC: a write under the lock */
	IO_WRITE_TAIL,		/* WRITE ending inside a block: see write_tail */
	IO_ORWRITE_TAIL,	/* the same for ORWRITE */
};

/* GET LBA STATUS answers at most this many descriptors at once. */
#define LBA_STATUS_MAX_DESC 128

/* Run op on cmd's LUN: offset and length in bytes (IO_WRITE_SAME, IO_ZERO,
 * IO_TRIM: length in blocks; IO_UNMAP: descriptors; IO_LBA_STATUS:
 * descriptors at most), flags IGW_FLAG_*.  Loop thread; the command
 * completes later (SCSI_ASYNC is returned). */
int sbc_submit(struct scsi_cmd *cmd, int op, uint64_t offset, uint32_t length,
	       uint32_t flags);
/* Loop thread: serve a read from the page cache without a worker where
 * the backend allows; true when done, false when sbc_submit must. */
bool sbc_read_inline(struct scsi_cmd *cmd, uint64_t offset, uint32_t len);

#endif
