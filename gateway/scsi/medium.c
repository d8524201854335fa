/* medium.c: START STOP UNIT and removable media (SBC-4 PREVENT ALLOW
 * MEDIUM REMOVAL, START STOP UNIT's LOEJ bit).  Owns what the two commands
 * do; the state they change lives elsewhere: the LUN's medium_out flag
 * (lunmap.h) and each nexus's prevent bits (scsi.h), both changed through
 * cmd.c, which holds the nexus list.  Runs on the loop thread of the
 * command's connection.
 *
 * A LUN with "removable": true in the map is a removable-medium disk
 * (INQUIRY RMB = 1, spc.c).  Its "medium" is the backend: ejecting it
 * closes nothing, it only makes the medium access commands (every row of
 * the opcode table without OPF_NO_MEDIUM) end with NOT READY, MEDIUM NOT
 * PRESENT until a load.  The medium starts loaded, and a daemon restart
 * or a reload that changes the LUN loads it again.
 *
 *   PREVENT (01b) from nexus A ---> A's prevent bit for the LUN's slot
 *   eject or load (LOEJ 1) -------> refused while any nexus's bit is set
 *   ALLOW (00b) from A, A's I_T nexus loss, LOGICAL UNIT RESET, target
 *   warm or cold reset -----------> A's bit (every bit for a reset) cleared
 *
 * Prevention locks the medium where it is, as it locks a drive's tray:
 * an eject of a medium that is in, and a load of one that is out, end
 * with ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED (libiscsi's
 * PreventAllow.Eject checks both); asking for where the medium already
 * is succeeds.
 *
 * A non-removable LUN behaves as it did before the key existed: PREVENT
 * ALLOW MEDIUM REMOVAL is an unsupported operation code there and START
 * STOP UNIT is accepted whatever its bits, the LUN staying ready.
 */
#include "config.h"

#include <errno.h>

#include "scsi.h"
#include "lunmap.h"
#include "log.h"

bool
sbc_removable_avail(const struct lun *l)
{
	return l->removable;
}

int
sbc_start_stop_unit(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	bool loej = c[4] & 0x02, start = c[4] & 0x01;
	int r;

	/* A gateway LUN has no motor: every power condition is accepted and
	 * the LUN stays ready.  SBC-4: START and LOEJ count only with the
	 * POWER CONDITION field 0h (START_VALID); IMMED is honoured by
	 * finishing first, which is never wrong. */
	if ((c[4] >> 4) != 0 || !loej || !l->removable)
		return SCSI_DONE;
	r = scsi_medium_move(l, !start);
	if (r < 0) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_MEDIUM_REMOVAL_PREVENTED);
		return SCSI_DONE;
	}
	if (r == 0)
		return SCSI_DONE;
	log_info("%s: medium %s", l->pointer ? l->pointer : "LUN",
		 start ? "loaded" : "ejected");
	/* SAM-5 counts a possibly changed removable medium among the events
	 * that establish a unit attention (NOT READY TO READY CHANGE, MEDIUM
	 * MAY HAVE CHANGED).  The nexus that loaded it learns so from its
	 * GOOD status, as MODE SELECT's sender does; libiscsi's
	 * StartStopUnit.Simple wants its next TEST UNIT READY GOOD. */
	if (start)
		scsi_ua_establish_others(l, cmd->nexus, UA_MEDIUM_CHANGED);
	return SCSI_DONE;
}

int
sbc_prevent_allow(struct scsi_cmd *cmd)
{
	unsigned prevent = cmd->cdb[4] & 0x03;

	/* 00b allows removal, 01b prevents it; 10b and 11b (a medium
	 * changer's persistent prevention) are obsolete in SBC-4. */
	if (prevent > 1) {
		scsi_invalid_field(cmd, 4, 1);
		return SCSI_DONE;
	}
	if (!scsi_nexus_prevent(cmd->nexus, cmd->lun, prevent == 1))
		scsi_set_errno(cmd, ENOMEM, false);
	return SCSI_DONE;
}
