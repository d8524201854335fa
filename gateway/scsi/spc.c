/* spc.c: SPC-4 primary commands emulated by the core: INQUIRY and its VPD
 * pages, REPORT LUNS, TEST UNIT READY, REQUEST SENSE, MODE SENSE/SELECT and
 * REPORT SUPPORTED OPERATION CODES.  Owns the response layouts; the
 * allocation-length cut and residual belong to spc_put_data.  Loop thread.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi.h"
#include "lunmap.h"
#include "backend.h"
#include "util/util.h"

#define VENDOR "ISCSI-GW"
#define PRODUCT "iscsi-gw disk"
#define REVISION PACKAGE_VERSION

int
spc_put_data(struct scsi_cmd *cmd, const void *data, uint32_t len,
	     uint32_t alloc)
{
	uint32_t n = MIN(len, alloc);

	cmd->xfer_len = n;
	cmd->data_len = MIN(n, cmd->edtl);
	if (cmd->data_len)
		memcpy(cmd->buf, data, cmd->data_len);
	return SCSI_DONE;
}

static void
pad_copy(uint8_t *dst, const char *src, size_t n)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, MIN(l, n));
}

static uint32_t
max_xfer_blocks(const struct lun *l)
{
	return SCSI_MAX_XFER >> l->block_shift;
}

static int
inquiry_std(struct scsi_cmd *cmd, uint32_t alloc)
{
	uint8_t d[96] = { 0 };

	d[0] = cmd->lun ? 0x00 : 0x7f;	/* disk, or "no LUN here" (SPC-4 §6.6.2) */
	if (cmd->lun && cmd->lun->removable)
		d[1] = 0x80;		/* RMB: removable medium (medium.c) */
	d[2] = 0x06;			/* SPC-4 */
	d[3] = 0x12;			/* HISUP, response data format 2 */
	d[4] = sizeof d - 5;
	/* TPGS 01b: implicit asymmetric access (ALUA) only, and every
	 * port of a target in one group that is always active/optimized
	 * (REPORT TARGET PORT GROUPS); 3PC: EXTENDED COPY (xcopy.c). */
	d[5] = 0x08;
	if (cmd->lun)
		d[5] |= 0x10;
	d[7] = 0x02;			/* CMDQUE */
	pad_copy(d + 8, VENDOR, 8);
	pad_copy(d + 16, PRODUCT, 16);
	pad_copy(d + 32, REVISION, 4);
	/* Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3. */
	put_be16(d + 58, 0x00a0);
	put_be16(d + 60, 0x0960);
	put_be16(d + 62, 0x0460);
	put_be16(d + 64, 0x04c0);
	return spc_put_data(cmd, d, sizeof d, alloc);
}

static unsigned
designator(uint8_t *p, uint8_t proto_codeset, uint8_t piv_assoc_type,
	   const void *id, unsigned len)
{
	p[0] = proto_codeset;
	p[1] = piv_assoc_type;
	p[2] = 0;
	p[3] = len;
	memcpy(p + 4, id, len);
	return 4 + len;
}

static int
vpd_device_id(struct scsi_cmd *cmd, uint32_t alloc)
{
	struct lun *l = cmd->lun;
	uint8_t d[1024] = { 0 };
	uint8_t id[300];
	unsigned o = 4, n;

	d[0] = 0x00;
	d[1] = 0x83;
	/* NAA (type 3), logical unit, binary. */
	put_be64(id, l->naa);
	o += designator(d + o, 0x01, 0x03, id, 8);
	/* T10 vendor ID (type 1), logical unit, ASCII. */
	pad_copy(id, VENDOR, 8);
	n = snprintf((char *)id + 8, sizeof id - 8, "%s", l->serial) + 8;
	o += designator(d + o, 0x02, 0x01, id, n);
	/* Relative target port (type 4), target port, iSCSI, PIV. */
	memset(id, 0, 4);
	put_be16(id + 2, 1);
	o += designator(d + o, 0x51, 0x94, id, 4);
	/* Target port group (type 5): the target's portal group tag. */
	memset(id, 0, 4);
	put_be16(id + 2, l->target->tpgt);
	o += designator(d + o, 0x51, 0x95, id, 4);
	/* SCSI name string (type 8) of the target port, UTF-8, padded to a
	 * multiple of 4 with NULs (SPC-4 §7.8.6.11). */
	memset(id, 0, sizeof id);
	n = snprintf((char *)id, 256, "%s,t,0x%04x", l->target->name,
		     l->target->tpgt) + 1;
	n = (n + 3) & ~3u;
	o += designator(d + o, 0x53, 0x98, id, n);
	/* SCSI name string of the target device. */
	memset(id, 0, sizeof id);
	n = snprintf((char *)id, 256, "%s", l->target->name) + 1;
	n = (n + 3) & ~3u;
	o += designator(d + o, 0x53, 0xa8, id, n);
	put_be16(d + 2, o - 4);
	return spc_put_data(cmd, d, o, alloc);
}

static int
vpd_block_limits(struct scsi_cmd *cmd, uint32_t alloc)
{
	struct lun *l = cmd->lun;
	uint8_t d[64] = { 0 };
	uint32_t pblocks = 4096 >> l->block_shift;

	d[1] = 0xb0;
	put_be16(d + 2, 0x3c);
	d[5] = SCSI_MAX_CAW_BLOCKS;		/* max COMPARE AND WRITE */
	put_be16(d + 6, pblocks ? pblocks : 1);	/* optimal granularity */
	put_be32(d + 8, max_xfer_blocks(l));		/* maximum transfer */
	put_be32(d + 12, MIN(max_xfer_blocks(l), (1u << 20) >> l->block_shift)); /* optimal */
	if (l->thin && l->be->can_trim) {
		put_be32(d + 20, 0xffffffff);		/* max unmap LBA count */
		put_be32(d + 24, 256);			/* max descriptors */
		put_be32(d + 28, pblocks ? pblocks : 1); /* unmap granularity */
	}
	/* Maximum WRITE SAME length. */
	put_be64(d + 36, 0xffffffffULL);
	/* WRITE ATOMIC(16): the maximum atomic transfer length (0 where the
	 * LUN has no WRITE ATOMIC); ATOMIC ALIGNMENT and ATOMIC TRANSFER
	 * LENGTH GRANULARITY stay 0 (none), and so do the two "with atomic
	 * boundary" maxima (bytes 56-63): no ATOMIC BOUNDARY. */
	put_be32(d + 44, sbc_atomic_max(l));
	return spc_put_data(cmd, d, 64, alloc);
}

static int
vpd_block_dev_char(struct scsi_cmd *cmd, uint32_t alloc)
{
	uint8_t d[64] = { 0 };

	d[1] = 0xb1;
	put_be16(d + 2, 0x3c);
	/* Medium rotation rate: 1 (non-rotating) for RAM, else not reported. */
	put_be16(d + 4, strcmp(cmd->lun->be->ops.name, "memory") ? 0 : 1);
	/* WABEREQ 01b: after SANITIZE BLOCK ERASE reads succeed (and return
	 * zeroes); 00b where BLOCK ERASE is not offered.  WACEREQ stays 00b:
	 * no CRYPTOGRAPHIC ERASE.  OVERWRITE has no such field. */
	if (sbc_sanitize_sa_avail(cmd->lun, 0x02))
		d[7] = 0x40;
	return spc_put_data(cmd, d, 64, alloc);
}

static int
vpd_lbp(struct scsi_cmd *cmd, uint32_t alloc)
{
	struct lun *l = cmd->lun;
	uint8_t d[8] = { 0 };
	bool lbp = l->thin && l->be->can_trim;

	d[1] = 0xb2;
	put_be16(d + 2, 4);
	if (lbp) {
		/* LBPU, LBPWS, LBPWS10; LBPRZ = 1: unmapped blocks read zero. */
		d[5] = 0x80 | 0x40 | 0x20 | (1 << 2);
		d[6] = 0x02;	/* thin provisioned */
	}
	return spc_put_data(cmd, d, sizeof d, alloc);
}

int
spc_inquiry(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint32_t alloc = get_be16(c + 3);
	uint8_t d[16] = { 0 };

	if (c[1] & 0x02) {	/* CMDDT, obsolete */
		scsi_invalid_field(cmd, 1, 1);
		return SCSI_DONE;
	}
	if (!(c[1] & 0x01)) {
		if (c[2]) {
			scsi_invalid_field(cmd, 2, 7);
			return SCSI_DONE;
		}
		return inquiry_std(cmd, alloc);
	}
	if (!cmd->lun) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_LOGICAL_UNIT_NOT_SUPPORTED);
		return SCSI_DONE;
	}
	switch (c[2]) {
	case 0x00: {
		static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0x8f,
						 0xb0, 0xb1, 0xb2 };
		d[1] = 0x00;
		put_be16(d + 2, sizeof pages);
		memcpy(d + 4, pages, sizeof pages);
		return spc_put_data(cmd, d, 4 + sizeof pages, alloc);
	}
	case 0x80: {
		uint8_t s[4 + 64] = { 0 };
		size_t n = strlen(cmd->lun->serial);
		s[1] = 0x80;
		s[3] = n;
		memcpy(s + 4, cmd->lun->serial, n);
		return spc_put_data(cmd, s, 4 + n, alloc);
	}
	case 0x83:
		return vpd_device_id(cmd, alloc);
	case 0x8f:
		return spc_vpd_third_party_copy(cmd, alloc);
	case 0xb0:
		return vpd_block_limits(cmd, alloc);
	case 0xb1:
		return vpd_block_dev_char(cmd, alloc);
	case 0xb2:
		return vpd_lbp(cmd, alloc);
	default:
		scsi_invalid_field(cmd, 2, 7);
		return SCSI_DONE;
	}
}

int
spc_report_luns(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint32_t alloc = get_be32(c + 6);
	struct target *t = cmd->nexus->target;
	uint8_t *d;
	uint32_t n = 0;
	int r;

	if (alloc < 16) {
		scsi_invalid_field(cmd, 6, 7);
		return SCSI_DONE;
	}
	switch (c[2]) {
	case 0x00: case 0x02:	/* all logical units (no well-known ones) */
		n = t->nluns;
		break;
	case 0x01:		/* well-known logical units only: none */
		n = 0;
		break;
	case 0x10: case 0x11: case 0x12:
		/* Administrative LUN / subsidiary select reports: only LUN 0
		 * is an administrative-capable LUN here; report nothing. */
		n = 0;
		break;
	default:
		scsi_invalid_field(cmd, 2, 7);
		return SCSI_DONE;
	}
	d = calloc(1, 8 + 8 * (size_t)n);
	if (!d) {
		scsi_set_errno(cmd, ENOMEM, false);
		return SCSI_DONE;
	}
	for (uint32_t i = 0; i < n; i++)
		put_be64(d + 8 + 8 * i, scsi_encode_lun(t->luns[i]->id));
	put_be32(d, 8 * n);
	/* REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED (SPC-4 §6.33). */
	if (cmd->lun && cmd->nexus) {
		pthread_mutex_lock(&cmd->nexus->lock);
		if (cmd->lun->slot < cmd->nexus->nua)
			cmd->nexus->ua[cmd->lun->slot] &= ~(1u << UA_LUNS_CHANGED);
		pthread_mutex_unlock(&cmd->nexus->lock);
	}
	r = spc_put_data(cmd, d, 8 + 8 * n, alloc);
	free(d);
	return r;
}

int
spc_test_unit_ready(struct scsi_cmd *cmd)
{
	return SCSI_DONE;
}

int
spc_request_sense(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	bool desc = c[1] & 0x01;
	uint8_t s[SCSI_SENSE_MAX];
	uint16_t asc;
	unsigned n;

	if (!cmd->lun)
		n = scsi_build_sense(s, desc, SK_ILLEGAL_REQUEST,
				     ASC_LOGICAL_UNIT_NOT_SUPPORTED);
	else if (__atomic_load_n(&cmd->lun->sanitizing, __ATOMIC_ACQUIRE))
		n = sbc_sanitize_sense(cmd->lun, s, desc);
	else if (scsi_ua_pop(cmd, &asc))
		n = scsi_build_sense(s, desc, SK_UNIT_ATTENTION, asc);
	else if (__atomic_load_n(&cmd->lun->medium_out, __ATOMIC_ACQUIRE))
		n = scsi_build_sense(s, desc, SK_NOT_READY,
				     ASC_MEDIUM_NOT_PRESENT);
	else
		n = scsi_build_sense(s, desc, SK_NO_SENSE,
				     ASC_NO_ADDITIONAL_SENSE);
	return spc_put_data(cmd, s, n, c[4]);
}

/* Mode pages (SPC-4 §7.5, SBC-3 §6.4).  pc: 0 current, 1 changeable,
 * 2 default.  Returns the page length written. */
static unsigned
page_caching(struct lun *l, uint8_t *p, unsigned pc)
{
	memset(p, 0, 20);
	p[0] = 0x08;
	p[1] = 0x12;
	if (pc == 1) {
		p[2] = l->be->can_flush ? 0x04 : 0;	/* WCE changeable */
	} else if (pc == 2) {
		p[2] = 0;
	} else if (pc == 3) {
		int wce, swp;
		mode_saved(l, &wce, &swp);
		p[2] = wce ? 0x04 : 0;
	} else {
		p[2] = __atomic_load_n(&l->wce, __ATOMIC_RELAXED) ? 0x04 : 0;
	}
	if (mode_can_save(l))
		p[0] |= 0x80;	/* PS: the page can be saved */
	return 20;
}

static unsigned
page_control(struct lun *l, uint8_t *p, unsigned pc)
{
	memset(p, 0, 12);
	p[0] = 0x0a;
	p[1] = 0x0a;
	if (pc == 1) {
		p[4] = 0x08;	/* SWP changeable */
		return 12;
	}
	if (mode_can_save(l))
		p[0] |= 0x80;	/* PS */
	if (pc == 0 && __atomic_load_n(&l->swp, __ATOMIC_RELAXED))
		p[4] = 0x08;
	if (pc == 3) {
		int wce, swp;
		mode_saved(l, &wce, &swp);
		if (swp)
			p[4] = 0x08;
	}
	p[2] = 0x00;	/* TST 0, D_SENSE 0 */
	p[3] = 0x10;	/* queue algorithm modifier 1: unrestricted reordering */
	p[5] = 0x40;	/* ATO: LBAT/ATO... application tag not modified */
	put_be16(p + 8, 0xffff);	/* busy timeout period: unlimited */
	return 12;
}

static unsigned
page_info_exceptions(struct lun *l, uint8_t *p, unsigned pc)
{
	memset(p, 0, 12);
	p[0] = 0x1c;
	p[1] = 0x0a;
	return 12;
}

static const struct {
	uint8_t code;
	unsigned (*fn)(struct lun *, uint8_t *, unsigned);
} mode_pages[] = {
	{ .code = 0x08, .fn = page_caching },
	{ .code = 0x0a, .fn = page_control },
	{ .code = 0x1c, .fn = page_info_exceptions },
};

int
spc_mode_sense(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	bool ten = c[0] == 0x5a;
	bool dbd = c[1] & 0x08;
	bool llbaa = ten && (c[1] & 0x10);
	unsigned pc = c[2] >> 6, page = c[2] & 0x3f, subpage = c[3];
	uint32_t alloc = ten ? get_be16(c + 7) : c[4];
	struct lun *l = cmd->lun;
	uint8_t d[512] = { 0 };
	unsigned hdr = ten ? 8 : 4, o = hdr, bd = 0;
	bool found = false;

	if (pc == 3 && !mode_can_save(l)) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
		return SCSI_DONE;
	}
	if (subpage != 0x00 && !(page == 0x3f && subpage == 0xff)) {
		scsi_invalid_field(cmd, 3, 7);
		return SCSI_DONE;
	}
	if (!dbd) {
		bd = llbaa ? 16 : 8;
		if (llbaa) {
			put_be64(d + o, l->nblocks);
			put_be32(d + o + 12, l->block_size);
		} else {
			put_be32(d + o, (uint32_t)MIN(l->nblocks, 0xffffffffULL));
			put_be24(d + o + 5, l->block_size);
		}
		o += bd;
	}
	for (size_t i = 0; i < ARRAY_SIZE(mode_pages); i++) {
		if (page == 0x3f || page == mode_pages[i].code) {
			o += mode_pages[i].fn(l, d + o, pc);
			found = true;
		}
	}
	if (!found) {
		scsi_invalid_field(cmd, 2, 5);
		return SCSI_DONE;
	}
	/* Header: mode data length, medium type, device-specific parameter
	 * (WP, DPOFUA), block descriptor length. */
	if (ten) {
		put_be16(d, o - 2);
		d[3] = (l->read_only || __atomic_load_n(&l->swp, __ATOMIC_RELAXED) ? 0x80 : 0) | 0x10;
		d[4] = llbaa ? 0x01 : 0;
		put_be16(d + 6, bd);
	} else {
		d[0] = o - 1;
		d[2] = (l->read_only || __atomic_load_n(&l->swp, __ATOMIC_RELAXED) ? 0x80 : 0) | 0x10;
		d[3] = bd;
	}
	return spc_put_data(cmd, d, o, alloc);
}

/* MODE SELECT: the caching page's WCE is the one changeable field. */
int
spc_mode_select(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	bool ten = c[0] == 0x55;
	uint32_t plen = ten ? get_be16(c + 7) : c[4];
	unsigned hdr = ten ? 8 : 4;
	const uint8_t *p = cmd->buf;
	uint32_t bdl, o;
	struct lun *l = cmd->lun;
	int new_wce = -1, new_swp = -1;

	cmd->xfer_len = plen;
	/* SP: saving needs a state_dir (mode-save.c). */
	if ((c[1] & 0x01) && !mode_can_save(l)) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
		return SCSI_DONE;
	}
	if (!(c[1] & 0x10) && plen) {	/* PF must be set for pages */
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (plen == 0)
		return SCSI_DONE;
	if (plen > cmd->edtl || plen < hdr) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAMETER_LIST_LENGTH_ERROR);
		return SCSI_DONE;
	}
	bdl = ten ? get_be16(p + 6) : p[3];
	o = hdr + bdl;
	while (o + 2 <= plen) {
		unsigned code = p[o] & 0x3f, len = p[o + 1];
		if (p[o] & 0x40) {	/* subpage format: none changeable */
			scsi_invalid_param(cmd, o, 6);
			return SCSI_DONE;
		}
		if (o + 2 + len > plen) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_PARAMETER_LIST_LENGTH_ERROR);
			return SCSI_DONE;
		}
		if (code == 0x08 && len == 0x12) {
			int wce = (p[o + 2] & 0x04) ? 1 : 0;
			uint8_t cur[20];
			if (wce && !l->be->can_flush) {
				scsi_invalid_param(cmd, o + 2, 2);
				return SCSI_DONE;
			}
			/* Every other field must match the current page. */
			page_caching(l, cur, 0);
			for (unsigned i = 2; i < 20; i++)
				if ((p[o + i] & ~(i == 2 ? 0x04 : 0)) !=
				    (cur[i] & ~(i == 2 ? 0x04 : 0))) {
					scsi_invalid_param(cmd, o + i, -1);
					return SCSI_DONE;
				}
			new_wce = wce;
		} else if (code == 0x0a && len == 0x0a) {
			uint8_t cur[12];
			int swp = (p[o + 4] & 0x08) ? 1 : 0;
			page_control(l, cur, 0);
			for (unsigned i = 2; i < 12; i++)
				if ((p[o + i] & ~(i == 4 ? 0x08 : 0)) !=
				    (cur[i] & ~(i == 4 ? 0x08 : 0))) {
					scsi_invalid_param(cmd, o + i, -1);
					return SCSI_DONE;
				}
			new_swp = swp;
		} else {
			uint8_t cur[32];
			bool known = false;
			for (size_t i = 0; i < ARRAY_SIZE(mode_pages); i++)
				if (mode_pages[i].code == code && code != 0x08 && code != 0x0a) {
					unsigned n = mode_pages[i].fn(l, cur, 0);
					known = true;
					if (n != len + 2u ||
					    memcmp(cur + 2, p + o + 2, len)) {
						scsi_invalid_param(cmd, o, -1);
						return SCSI_DONE;
					}
				}
			if (!known) {
				scsi_invalid_param(cmd, o, 5);
				return SCSI_DONE;
			}
		}
		o += 2 + len;
	}
	/* SPC-4 §6.11: nothing changes unless the whole list is valid, so
	 * the values are applied only here. */
	if (new_wce >= 0 &&
	    __atomic_exchange_n(&l->wce, new_wce, __ATOMIC_SEQ_CST) != new_wce) {
		scsi_ua_establish_all(l->target, l, UA_MODE_CHANGED);
		/* The initiator that changed it gets no UA for it. */
		pthread_mutex_lock(&cmd->nexus->lock);
		if (l->slot < cmd->nexus->nua)
			cmd->nexus->ua[l->slot] &= ~(1u << UA_MODE_CHANGED);
		pthread_mutex_unlock(&cmd->nexus->lock);
	}
	/* No MODE PARAMETERS CHANGED for SWP: other initiators learn of it
	 * from WRITE PROTECTED on their next write, and a UA would fail their
	 * unrelated commands (libiscsi's test cleanup among them).  WCE,
	 * which changes durability, does raise it. */
	if (new_swp >= 0)
		__atomic_store_n(&l->swp, new_swp, __ATOMIC_SEQ_CST);
	if (c[1] & 0x01)
		return mode_save(cmd, new_wce, new_swp);
	return SCSI_DONE;
}

const struct scsi_op *scsi_op_at(unsigned opcode);

/* The row of opcode if LUN l offers it, else NULL. */
static const struct scsi_op *
op_on_lun(unsigned opcode, const struct lun *l)
{
	const struct scsi_op *op = scsi_op_at(opcode);

	return op && (!op->avail || op->avail(l)) ? op : NULL;
}

static const struct {
	uint8_t opcode;
	uint8_t sa;
	const char *name;
	uint8_t len;
} sa_ops[] = {
	/* SANITIZE: the rows the LUN offers (sa_on_lun). */
	{ .opcode = 0x48, .sa = 0x01, .name = "SANITIZE", .len = 10 },
	{ .opcode = 0x48, .sa = 0x02, .name = "SANITIZE", .len = 10 },
	{ .opcode = 0x48, .sa = 0x1f, .name = "SANITIZE", .len = 10 },
	{ .opcode = 0x83, .sa = 0x00, .name = "EXTENDED COPY(LID1)", .len = 16 },
	{ .opcode = 0x84, .sa = 0x00, .name = "RECEIVE COPY STATUS(LID1)",
	  .len = 16 },
	{ .opcode = 0x84, .sa = 0x03, .name = "RECEIVE COPY OPERATING PARAMETERS",
	  .len = 16 },
	{ .opcode = 0x9e, .sa = 0x10, .name = "READ CAPACITY(16)", .len = 16 },
	{ .opcode = 0x9e, .sa = 0x12, .name = "GET LBA STATUS", .len = 16 },
	{ .opcode = 0xa3, .sa = 0x0a, .name = "REPORT TARGET PORT GROUPS",
	  .len = 12 },
	{ .opcode = 0xa3, .sa = 0x0c, .name = "REPORT SUPPORTED OPERATION CODES",
	  .len = 12 },
};

/* Does LUN l offer the service action of row i? */
static bool
sa_on_lun(size_t i, const struct lun *l)
{
	return sa_ops[i].opcode != 0x48 ||
	       sbc_sanitize_sa_avail(l, sa_ops[i].sa);
}

static bool
has_sa(unsigned opcode)
{
	return opcode == 0x48 || opcode == 0x83 || opcode == 0x84 ||
	       opcode == 0x9e || opcode == 0xa3;
}

/* REPORT TARGET PORT GROUPS (SPC-4 §6.37): one group, the target's
 * portal group, with its one target port (relative port 1), always
 * active/optimized, implicit ALUA.  Every portal of the target is a
 * network portal of that one port. */
static int
report_target_port_groups(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	unsigned fmt = c[1] >> 5;
	uint32_t alloc = get_be32(c + 6);
	uint8_t d[32] = { 0 };
	unsigned o;

	if (fmt > 1) {
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	o = 4;
	if (fmt == 1) {		/* extended header */
		d[4] = 0x10;
		d[5] = 0;	/* implicit transition time: none */
		o = 8;
	}
	d[o] = 0x80 | 0x00;		/* PREF; active/optimized */
	d[o + 1] = 0x01;		/* AO_SUP */
	put_be16(d + o + 2, cmd->lun->target->tpgt);
	d[o + 5] = 0;			/* status: none */
	d[o + 7] = 1;			/* target port count */
	put_be16(d + o + 10, 1);	/* relative target port identifier */
	o += 12;
	put_be32(d, o - 4);
	return spc_put_data(cmd, d, o, alloc);
}

int
spc_report_supported_opcodes(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	unsigned sa = c[1] & 0x1f, opts = c[2] & 0x07, rctd = c[2] & 0x80;
	unsigned req_op = c[3], req_sa = get_be16(c + 4);
	uint32_t alloc = get_be32(c + 6);
	uint8_t d[4096] = { 0 };
	unsigned o = 0, dlen = rctd ? 20 : 8;
	const struct scsi_op *op;

	if (sa == 0x0a)
		return report_target_port_groups(cmd);
	if (sa != 0x0c) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (opts == 0) {
		o = 4;
		for (unsigned code = 0; code < 256; code++) {
			op = op_on_lun(code, cmd->lun);
			if (!op)
				continue;
			if (has_sa(code)) {
				for (size_t i = 0; i < ARRAY_SIZE(sa_ops); i++) {
					if (sa_ops[i].opcode != code ||
					    !sa_on_lun(i, cmd->lun))
						continue;
					d[o] = code;
					put_be16(d + o + 2, sa_ops[i].sa);
					d[o + 5] = 0x01 | (rctd ? 0x02 : 0);
					put_be16(d + o + 6, sa_ops[i].len);
					if (rctd)
						put_be16(d + o + 8, 0x0a);
					o += dlen;
				}
				continue;
			}
			d[o] = code;
			d[o + 5] = rctd ? 0x02 : 0;
			put_be16(d + o + 6, op->cdb_len);
			if (rctd)
				put_be16(d + o + 8, 0x0a);
			o += dlen;
		}
		put_be32(d, o - 4);
		return spc_put_data(cmd, d, o, alloc);
	}
	if (opts > 3) {
		scsi_invalid_field(cmd, 2, 2);
		return SCSI_DONE;
	}
	op = op_on_lun(req_op, cmd->lun);
	if (op && ((opts == 1 && has_sa(req_op)) ||
		   (opts == 2 && !has_sa(req_op)))) {
		scsi_invalid_field(cmd, 2, 2);
		return SCSI_DONE;
	}
	bool supported = op != NULL;
	unsigned len = op ? op->cdb_len : 0;
	uint8_t usage[16] = { 0 };
	if (op) {
		memcpy(usage, op->usage, len);
		if (has_sa(req_op) && opts != 1) {
			supported = false;
			for (size_t i = 0; i < ARRAY_SIZE(sa_ops); i++)
				if (sa_ops[i].opcode == req_op &&
				    sa_ops[i].sa == req_sa &&
				    sa_on_lun(i, cmd->lun))
					supported = true;
			usage[1] = (usage[1] & 0xe0) | (req_sa & 0x1f);
			if (req_op == 0xa3 && req_sa == 0x0a) {
				usage[1] |= 0xe0;	/* PARAMETER DATA FORMAT */
				usage[2] = 0;
			}
		}
	}
	d[1] = (rctd ? 0x80 : 0) | (supported ? 0x03 : 0x01);
	if (supported) {
		put_be16(d + 2, len);
		memcpy(d + 4, usage, len);
		o = 4 + len;
		if (rctd) {
			put_be16(d + o, 0x0a);
			o += 12;
		}
	} else {
		o = 4;
	}
	return spc_put_data(cmd, d, o, alloc);
}
