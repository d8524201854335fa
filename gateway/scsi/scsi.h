/* scsi.h: the SCSI layer.  Owns the scsi_cmd (CDB, LUN, data buffer,
 * status and sense), the opcode table, SPC/SBC emulation, unit attentions
 * and the mapping of backend errors to sense.  It never sees a PDU: the
 * transport fills a scsi_cmd, calls scsi_cmd_exec, and is called back through
 * cmd->done on the same loop thread.  Blocking backend calls go to the IO
 * worker pool.
 */
#ifndef IGW_SCSI_H
#define IGW_SCSI_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "io/io.h"

struct lun;
struct lunmap;
struct target;
struct xcopy_nexus;

/* Status codes (SAM-5). */
#define SAM_STAT_GOOD 0x00
#define SAM_STAT_CHECK_CONDITION 0x02
#define SAM_STAT_CONDITION_MET 0x04
#define SAM_STAT_BUSY 0x08
#define SAM_STAT_RESERVATION_CONFLICT 0x18
#define SAM_STAT_TASK_SET_FULL 0x28
#define SAM_STAT_TASK_ABORTED 0x40

/* Sense keys (SPC-4 §4.5.6). */
#define SK_NO_SENSE 0x0
#define SK_RECOVERED_ERROR 0x1
#define SK_NOT_READY 0x2
#define SK_MEDIUM_ERROR 0x3
#define SK_HARDWARE_ERROR 0x4
#define SK_ILLEGAL_REQUEST 0x5
#define SK_UNIT_ATTENTION 0x6
#define SK_DATA_PROTECT 0x7
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE 0xe

/* ASC/ASCQ pairs, as one 16-bit value (SPC-4 Annex D). */
#define ASC_NO_ADDITIONAL_SENSE 0x0000
#define ASC_LUN_NOT_READY 0x0400
#define ASC_SANITIZE_IN_PROGRESS 0x041b
#define ASC_WRITE_ERROR 0x0c00
#define ASC_INVALID_FIELD_IN_INFORMATION_UNIT 0x0e03
#define ASC_DATA_PHASE_ERROR 0x4b00
#define ASC_PROTOCOL_SERVICE_CRC_ERROR 0x4705
#define ASC_UNRECOVERED_READ_ERROR 0x1100
#define ASC_SANITIZE_COMMAND_FAILED 0x3103
#define ASC_MISCOMPARE_DURING_VERIFY 0x1d00
#define ASC_PARAMETER_LIST_LENGTH_ERROR 0x1a00
#define ASC_INVALID_COMMAND_OPERATION_CODE 0x2000
#define ASC_LBA_OUT_OF_RANGE 0x2100
#define ASC_INVALID_FIELD_IN_CDB 0x2400
#define ASC_LOGICAL_UNIT_NOT_SUPPORTED 0x2500
#define ASC_INVALID_FIELD_IN_PARAMETER_LIST 0x2600
#define ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION 0x2604
#define ASC_WRITE_PROTECTED 0x2700
#define ASC_SOFTWARE_WRITE_PROTECTED 0x2702
#define ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT 0x2707
#define ASC_POWER_ON_OCCURRED 0x2901
#define ASC_BUS_DEVICE_RESET_OCCURRED 0x2903
#define ASC_I_T_NEXUS_LOSS_OCCURRED 0x2907
#define ASC_NOT_READY_TO_READY_CHANGE 0x2800
#define ASC_MODE_PARAMETERS_CHANGED 0x2a01
#define ASC_RESERVATIONS_PREEMPTED 0x2a03
#define ASC_RESERVATIONS_RELEASED 0x2a04
#define ASC_REGISTRATIONS_PREEMPTED 0x2a05
#define ASC_CAPACITY_DATA_HAS_CHANGED 0x2a09
#define ASC_SAVING_PARAMETERS_NOT_SUPPORTED 0x3900
#define ASC_MEDIUM_NOT_PRESENT 0x3a00
#define ASC_REPORTED_LUNS_DATA_HAS_CHANGED 0x3f0e
#define ASC_INTERNAL_TARGET_FAILURE 0x4400
#define ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR 0x2f00
#define ASC_MEDIUM_REMOVAL_PREVENTED 0x5302
#define ASC_INSUFFICIENT_REGISTRATION_RESOURCES 0x5504

#define SCSI_SENSE_MAX 32

/* Unit attention conditions, one bit each, in reporting priority. */
enum scsi_ua {
	UA_POWER_ON = 0,
	UA_RESET,
	UA_MEDIUM_CHANGED,		/* a removable medium was loaded */
	UA_CAPACITY_CHANGED,
	UA_MODE_CHANGED,
	UA_LUNS_CHANGED,
	UA_RESERVATIONS_PREEMPTED,	/* PR OUT CLEAR (SPC-4 §5.13.11.2.7) */
	UA_RESERVATIONS_RELEASED,	/* RELEASE of RO/AR, type changes */
	UA_REGISTRATIONS_PREEMPTED,	/* PREEMPT removed the registration */
	UA_COMMANDS_CLEARED,		/* another nexus aborted our commands */
	UA__MAX,
};

/* An I_T nexus: one session.  The transport creates it at login.  ua[] and
 * prevent[] are indexed by the LUN's slot (lunmap.h), sized at login and
 * grown when a UA or a prevention is established for a LUN added later:
 * check slot < nua before any read.  lock guards them. */
struct scsi_nexus {
	struct target *target;
	char initiator[224];
	uint8_t isid[6];
	pthread_mutex_t lock;
	uint32_t *ua;			/* lock; bitmask of enum scsi_ua */
	/* lock, and changed under nexus_list_lock too (cmd.c): 1 where this
	 * nexus prevents the removal of the LUN's medium (PREVENT ALLOW
	 * MEDIUM REMOVAL, medium.c). */
	uint8_t *prevent;
	size_t nua;
	struct xcopy_nexus *xcopy;	/* held copy results, xcopy.c (loop) */
	struct scsi_nexus *next;	/* global list, nexus_list_lock */
};

enum scsi_dir { SCSI_DIR_NONE = 0, SCSI_DIR_READ = 1, SCSI_DIR_WRITE = 2 };

struct scsi_cmd {
	/* Set by the transport before scsi_cmd_exec. */
	uint8_t cdb[32];
	unsigned cdb_len;
	uint64_t lun_raw;		/* the 8-byte LUN field */
	struct lun *lun;		/* NULL: no such LUN */
	unsigned lun_id;
	struct scsi_nexus *nexus;
	struct evloop *loop;
	unsigned dir;			/* SCSI_DIR_* bits from the PDU */
	uint32_t edtl;			/* expected data transfer length */
	uint8_t *buf;			/* edtl bytes, owned by transport */
	void (*done)(struct scsi_cmd *);	/* loop thread */
	/* The transport can send data-in straight from a file
	 * (scsi_cmd_send_data): no digest is computed over it. */
	bool data_file_ok;

	/* Set by the SCSI layer. */
	uint32_t xfer_len;		/* bytes the CDB asks to move */
	uint32_t data_len;		/* data-in bytes placed in buf */
	uint8_t status;
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_MAX];
	/* With data_file_ok, a read may leave its data_len bytes in the
	 * page cache of data_fd at data_fd_off instead of in buf: the
	 * transport sends them with scsi_cmd_send_data. */
	bool data_in_file;
	int data_fd;
	uint64_t data_fd_off;

	/* SCSI layer only: the backend request on the worker pool. */
	struct io_job job;
	int op;
	uint64_t offset;
	uint32_t length;
	uint32_t flags;
	int result;
	uint8_t *op_buf;		/* parameter data built by a worker */
	uint32_t op_len;
	uint64_t start_ns;		/* submitted (metrics.h clock) */
	/* Set (atomic, any thread) by the transport when it aborts the
	 * command: long work such as EXTENDED COPY stops at the next
	 * chunk.  The transport sends no status for it either way. */
	int abort;
	bool async;			/* in the backend's async path, not
					 * on a worker (sbc-io.c) */
};

/* Run a command.  cmd->done is always called, possibly before this
 * returns (emulated commands), else later from a completion. */
void scsi_cmd_exec(struct scsi_cmd *cmd);
/* How many IO workers one LUN may hold at once (sbc-io.c); set from
 * io_threads at start-up. */
void scsi_set_lun_worker_limit(unsigned io_threads);

/* Loop thread: send bytes [off, off+len) of a data_in_file command's
 * data to the socket with sendfile(2), under the LUN's write lock shared
 * as a worker's read would be (it waits for a COMPARE AND WRITE, ORWRITE
 * or WRITE ATOMIC in progress).  Returns what sendfile returns. */
ssize_t scsi_cmd_send_data(struct scsi_cmd *cmd, int sock, uint32_t off,
			   uint32_t len);

/* Complete a command: clip data_len and call cmd->done. */
void scsi_cmd_complete(struct scsi_cmd *cmd);

/* LUN field decode (SAM-5 §4.7): returns the LUN number or -1. */
int scsi_decode_lun(uint64_t raw);
uint64_t scsi_encode_lun(unsigned id);

/* Nexus life cycle (transport). */
struct scsi_nexus *scsi_nexus_new(struct target *t, const char *initiator,
				  const uint8_t isid[6]);
void scsi_nexus_free(struct scsi_nexus *n);
/* The I_T nexus is lost (its session closed, logged out or was
 * reinstated) though the object lives on until its last command is
 * done: its SPC-2 RESERVE(6/10) reservations end now (SPC-2 §5.5.1);
 * persistent reservation registrations stay.  Idempotent; implied by
 * scsi_nexus_free.  Loop thread. */
void scsi_nexus_lost(struct scsi_nexus *n);
/* Establish POWER ON OCCURRED on every LUN of a new nexus. */
void scsi_nexus_power_on(struct scsi_nexus *n);
/* Establish a UA on every nexus of the target for LUN (NULL: all LUNs).
 * UA_RESET and UA_POWER_ON say the LUN(s) were reset (LOGICAL UNIT RESET,
 * TARGET WARM/COLD RESET): SPC-2 RESERVE(6/10) reservations end with
 * them; persistent reservations stay (SPC-4 §5.13.1). */
void scsi_ua_establish_all(struct target *t, struct lun *l, enum scsi_ua ua);
/* Whether initiator (a name) has an I_T nexus to t now: it passed t's
 * ACL, CHAP and network checks at login. */
bool scsi_initiator_on_target(const char *initiator, const struct target *t);
/* Establish a UA for LUN l on the nexuses of l's target whose initiator
 * name matches and whose ISID matches isid (NULL: any), except one. */
void scsi_ua_establish_port(struct lun *l, const char *initiator,
			    const uint8_t *isid,
			    const struct scsi_nexus *except, enum scsi_ua ua);
/* Establish a UA for LUN l on nexus n alone. */
void scsi_ua_establish_nexus(struct scsi_nexus *n, struct lun *l,
			     enum scsi_ua ua);
/* Establish a UA for LUN l on every nexus that reaches it (those of its
 * initiator only for a per-initiator image) but except. */
void scsi_ua_establish_others(struct lun *l, const struct scsi_nexus *except,
			      enum scsi_ua ua);

/* Removable media (medium.c has the commands).  The prevent state is per
 * I_T nexus and LUN; I_T nexus loss (scsi_nexus_lost) and the resets of
 * scsi_ua_establish_all end it.  Set (on true) or clear n's prevention of
 * l's medium removal: false when out of memory.  Any loop thread. */
bool scsi_nexus_prevent(struct scsi_nexus *n, const struct lun *l, bool on);
/* Eject (out true) or load l's medium unless a nexus prevents its
 * removal: 1 when it moved, 0 when it was there already, -EBUSY when
 * prevented (it stays).  Atomic against scsi_nexus_prevent. */
int scsi_medium_move(struct lun *l, bool out);

/* Set by the transport at start-up, NULL: none.  PERSISTENT RESERVE OUT
 * PREEMPT AND ABORT (SPC-4 §5.13.11.2.6) calls it once per preempted
 * registration: abort, as ABORT TASK SET would, every command on LUN l
 * from the sessions to target t of initiator (case-insensitive) with
 * ISID isid (NULL: any ISID), except the command `except` (the PREEMPT AND
 * ABORT itself).  Aborted commands get no response (TAS = 0), and their
 * nexuses COMMANDS CLEARED BY ANOTHER INITIATOR; the transport holds the
 * PREEMPT AND ABORT's own status until they have left the SCSI layer.
 * Called on the loop thread of the PREEMPT AND ABORT, before its status
 * is sent, with no SCSI lock held; the registrations are gone by then, so
 * a new command from those nexuses already gets RESERVATION CONFLICT. */
typedef void scsi_abort_fn(struct target *t, struct lun *l,
			   const char *initiator, const uint8_t *isid,
			   const struct scsi_cmd *except);
extern scsi_abort_fn *scsi_abort_hook;

/* sense.c */
void scsi_set_sense(struct scsi_cmd *cmd, uint8_t key, uint16_t asc);
void scsi_set_sense_info(struct scsi_cmd *cmd, uint8_t key, uint16_t asc,
			 uint64_t info);
/* INVALID FIELD IN CDB with the field pointer (SPC-4 §4.5.2.4.2). */
void scsi_invalid_field(struct scsi_cmd *cmd, unsigned byte, int bit);
void scsi_invalid_param(struct scsi_cmd *cmd, unsigned byte, int bit);
/* Turn a backend -errno into sense; write tells WRITE ERROR from READ. */
void scsi_set_errno(struct scsi_cmd *cmd, int err, bool write);
/* Build sense bytes (fixed format) into out; returns its length. */
unsigned scsi_build_sense(uint8_t *out, bool descriptor, uint8_t key,
			  uint16_t asc);

/* Handler results. */
#define SCSI_DONE 0	/* status set, call done */
#define SCSI_ASYNC 1	/* submitted; done is called on completion */

struct scsi_op {
	const char *name;
	int (*fn)(struct scsi_cmd *cmd);
	unsigned cdb_len;
	unsigned flags;
#define OPF_NO_LUN 0x1		/* runs without a LUN (REPORT LUNS...) */
#define OPF_NO_UA 0x2		/* not affected by unit attention */
#define OPF_WRITE 0x4		/* changes the medium */
/* Reservations (scsi/pr.c): what passes a reservation held through
 * another I_T nexus.  Neither RESV flag: conflicts unless holder (or,
 * under registrants only/all registrants types, registered). */
#define OPF_RESV_ANY 0x8	/* every persistent reservation type */
#define OPF_RESV_READ 0x10	/* Write Exclusive types (reads) */
#define OPF_RESV_SPC2 0x20	/* an SPC-2 RESERVE(6/10) reservation */
/* Not a medium access command: runs on a removable LUN whose medium is
 * ejected.  Others end with NOT READY, MEDIUM NOT PRESENT then. */
#define OPF_NO_MEDIUM 0x40
	uint8_t usage[16];	/* CDB usage data (REPORT SUPPORTED OPCODES) */
	/* NULL, or whether LUN l offers the command: when it does not, the
	 * command ends with INVALID COMMAND OPERATION CODE and REPORT
	 * SUPPORTED OPERATION CODES leaves it out for that LUN. */
	bool (*avail)(const struct lun *l);
};

/* cdb-table.c */
const struct scsi_op *scsi_find_op(const uint8_t *cdb, unsigned *sa_out);
/* The row of opcode, NULL: not supported. */
const struct scsi_op *scsi_op_at(unsigned opcode);

/* spc.c */
int spc_inquiry(struct scsi_cmd *cmd);
int spc_report_luns(struct scsi_cmd *cmd);
int spc_test_unit_ready(struct scsi_cmd *cmd);
int spc_request_sense(struct scsi_cmd *cmd);
int spc_mode_sense(struct scsi_cmd *cmd);
int spc_mode_select(struct scsi_cmd *cmd);
int spc_report_supported_opcodes(struct scsi_cmd *cmd);
/* Copy up to alloc bytes of a built response into cmd->buf. */
int spc_put_data(struct scsi_cmd *cmd, const void *data, uint32_t len,
		 uint32_t alloc);
/* Pop the highest-priority UA for cmd's nexus and LUN; true if one was. */
bool scsi_ua_pop(struct scsi_cmd *cmd, uint16_t *asc);

/* pr.c */
int spc_pr_in(struct scsi_cmd *cmd);
int spc_pr_out(struct scsi_cmd *cmd);
int spc_reserve(struct scsi_cmd *cmd);	/* RESERVE(6), RESERVE(10) */
int spc_release(struct scsi_cmd *cmd);	/* RELEASE(6), RELEASE(10) */

/* sbc.c */
int sbc_read(struct scsi_cmd *cmd);
int sbc_write(struct scsi_cmd *cmd);
int sbc_read_capacity10(struct scsi_cmd *cmd);
int sbc_service_action_in(struct scsi_cmd *cmd);
int sbc_synchronize_cache(struct scsi_cmd *cmd);
int sbc_verify(struct scsi_cmd *cmd);
int sbc_write_verify(struct scsi_cmd *cmd);
int sbc_write_same(struct scsi_cmd *cmd);
int sbc_unmap(struct scsi_cmd *cmd);
int sbc_prefetch(struct scsi_cmd *cmd);
int sbc_compare_and_write(struct scsi_cmd *cmd);
int sbc_orwrite(struct scsi_cmd *cmd);
int sbc_write_atomic(struct scsi_cmd *cmd);
int sbc_read_defect_data(struct scsi_cmd *cmd);	/* (10) and (12) */
/* Largest transfer a command may ask for, in bytes. */
#define SCSI_MAX_XFER (32u << 20)
/* Largest COMPARE AND WRITE, in blocks (VPD B0). */
#define SCSI_MAX_CAW_BLOCKS 255
/* Largest WRITE ATOMIC, in bytes: every other write to the LUN waits
 * while it runs. */
#define SCSI_MAX_ATOMIC (1u << 20)
/* Whether LUN l offers WRITE ATOMIC: its backend's writes are atomic
 * (can_atomic).  Its MAXIMUM ATOMIC TRANSFER LENGTH in blocks (VPD B0),
 * 0 when it does not. */
bool sbc_atomic_avail(const struct lun *l);
/* pr-file.c: files in state_dir.  A hash of a target name for file
 * names; replace path (in folder dir) with text, temp file, fsync,
 * rename, fsync of the folder: a crash leaves the old file or the new. */
uint64_t state_hash(const char *s);
int state_file_replace(const char *path, const char *dir, const char *text,
		       size_t len);
/* mode-save.c: saved mode pages (MODE SELECT with SP) in
 * state_dir/mode-HASH-LUN.  Init restores them as the current values;
 * without state_dir nothing can be saved. */
int mode_lun_init(struct lun *l, const char *state_dir);
void mode_lun_free(struct lun *l);
bool mode_can_save(const struct lun *l);
/* The saved WCE and SWP (the defaults until something was saved). */
void mode_saved(const struct lun *l, int *wce, int *swp);
/* Save wce and swp (-1: keep the saved one); the command completes once
 * they are on disk.  Loop thread. */
int mode_save(struct scsi_cmd *cmd, int wce, int swp);

/* medium.c: START STOP UNIT and, on removable LUNs (the only ones that
 * offer it), PREVENT ALLOW MEDIUM REMOVAL. */
int sbc_start_stop_unit(struct scsi_cmd *cmd);
int sbc_prevent_allow(struct scsi_cmd *cmd);
bool sbc_removable_avail(const struct lun *l);


/* SANITIZE (sanitize.c): BLOCK ERASE on thin LUNs whose backend can
 * deallocate, OVERWRITE where the backend holds the only copy
 * (can_sanitize_overwrite), EXIT FAILURE MODE wherever either is.
 * sbc_sanitize_avail: the LUN offers the opcode; sbc_sanitize_sa_avail:
 * it offers that service action. */
#define SANITIZE_FAILED_RESTRICTED 1
#define SANITIZE_FAILED_UNRESTRICTED 2
bool sbc_sanitize_avail(const struct lun *l);
bool sbc_sanitize_sa_avail(const struct lun *l, unsigned sa);
int sbc_sanitize(struct scsi_cmd *cmd);
/* True when l is in the sanitize failure mode and the command with this
 * CDB is a medium access command, which then ends with MEDIUM ERROR,
 * SANITIZE COMMAND FAILED. */
bool sbc_sanitize_failed_blocks(const struct lun *l, const uint8_t *cdb);
/* The sense of a command refused while l is being sanitized (NOT READY,
 * SANITIZE IN PROGRESS, with the progress indication). */
unsigned sbc_sanitize_sense(const struct lun *l, uint8_t *s, bool desc);
uint32_t sbc_atomic_max(const struct lun *l);



/* xcopy.c: EXTENDED COPY(LID1) and RECEIVE COPY RESULTS (SPC-4 §6.4,
 * §6.18), the Third-party Copy VPD page.  The copy manager finds copy
 * targets among the LUNs of m (set at start-up, NULL: only the LUN a
 * command came to). */
void scsi_set_lunmap(struct lunmap *m);
/* How many copies run on the IO workers at once: a quarter of them, at
 * least one (scsi_set_lun_worker_limit calls it). */
void xcopy_set_limit(unsigned io_threads);
int spc_extended_copy(struct scsi_cmd *cmd);
int spc_receive_copy_results(struct scsi_cmd *cmd);
int spc_vpd_third_party_copy(struct scsi_cmd *cmd, uint32_t alloc);
/* Drop the held copy results of n (scsi_nexus_free). */
void xcopy_nexus_free(struct scsi_nexus *n);

/* How many data-out bytes the CDB describes (cmd->lun set), so the
 * transport solicits no more than min(EDTL, this).  Returns edtl for
 * commands whose length it cannot tell. */
uint32_t scsi_cmd_out_len(const struct scsi_cmd *cmd);
#endif
