/* fuzz-cdb.c: libFuzzer target for CDB dispatch (scsi/: the opcode table,
 * SPC and SBC emulation, sense) over the memory backend, with no network.
 * Commands run as t/unit/test-scsi.c runs them: scsi_cmd_exec on the loop
 * thread, backend requests on the IO worker pool, the done callback
 * stopping the loop.
 *
 * Input: 16 CDB bytes, then EDTL (2 bytes, big-endian), then data-out
 * bytes (the rest); a short input is padded with zeroes.  The buffer has
 * exactly EDTL bytes (none when EDTL is 0, as the iSCSI layer does), so
 * ASan sees any access past it.  Each input runs on every LUN below and on
 * a LUN that does not exist, with a fresh I_T nexus:
 *
 *   LUN 0: 1 MiB, 512-byte blocks
 *   LUN 1: 1 MiB, 4096-byte blocks, thin, write cache on
 *   LUN 2: 256 KiB, 512-byte blocks, read only
 *   LUN 3: 256 KiB, 4096-byte blocks, thin, read only
 *   LUN 9: not in the map
 *
 * Invariants: done is called exactly once, on the loop thread; status is a
 * SAM-5 status; sense_len <= 32, and CHECK CONDITION carries sense in a
 * known format; data_len <= EDTL; no GOOD status for a command that
 * changes the medium on a read-only LUN, nor for a command that needs a
 * LUN on a missing one.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/util.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "io/io.h"
#include "scsi/scsi.h"

#define TARGET_NAME "iqn.2026-01.com.example:fuzz-cdb"
#define NO_LUN 9
#define MAX_TICKS 5		/* seconds a command may take */

static const char map_json[] =
	"{\"portals\": [\"127.0.0.1:3260\"],"
	" \"targets\": [{\"name\": \"" TARGET_NAME "\", \"luns\": ["
	"  {\"lun\": 0, \"backend\": {\"type\": \"memory\", \"size\": \"1M\"}},"
	"  {\"lun\": 1, \"block_size\": 4096, \"thin\": true,"
	"   \"write_cache\": true,"
	"   \"backend\": {\"type\": \"memory\", \"size\": \"1M\"}},"
	"  {\"lun\": 2, \"read_only\": true, \"serial\": \"RO-2\","
	"   \"backend\": {\"type\": \"memory\", \"size\": \"256K\"}},"
	"  {\"lun\": 3, \"block_size\": 4096, \"thin\": true,"
	"   \"read_only\": true,"
	"   \"backend\": {\"type\": \"memory\", \"size\": \"256K\"}}]}]}";

static const unsigned lun_ids[] = { 0, 1, 2, 3, NO_LUN };

static struct conf *conf;
static struct lunmap *map;
static struct target *tgt;
static struct evloop *loop;
static pthread_t loop_thread;
static unsigned ticks;

struct xcmd {
	struct scsi_cmd cmd;
	bool in_exec;
	unsigned ndone;
	bool wrong_thread;
};

static void
xcmd_done(struct scsi_cmd *c)
{
	struct xcmd *x = container_of(c, struct xcmd, cmd);

	x->ndone++;
	if (!pthread_equal(pthread_self(), loop_thread))
		x->wrong_thread = true;
	if (!x->in_exec)
		evloop_stop(loop);
}

static void
tick(void *opaque)
{
	(void)opaque;
	if (++ticks >= MAX_TICKS)
		evloop_stop(loop);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	conf = fuzz_load_map(map_json, "fuzz-cdb");
	map = lunmap_new(conf);
	tgt = map ? lunmap_find_target(map, TARGET_NAME) : NULL;
	loop = evloop_new();
	if (!map || !tgt || !loop || io_pool_start(1) < 0)
		fuzz_fail("set-up failed");
	evloop_set_tick(loop, tick, NULL);
	loop_thread = pthread_self();
	fuzz_save_luns(map);
	return 0;
}

static bool
sam_status(uint8_t s)
{
	switch (s) {
	case SAM_STAT_GOOD:
	case SAM_STAT_CHECK_CONDITION:
	case SAM_STAT_CONDITION_MET:
	case SAM_STAT_BUSY:
	case SAM_STAT_RESERVATION_CONFLICT:
	case SAM_STAT_TASK_SET_FULL:
	case SAM_STAT_TASK_ABORTED:
		return true;
	}
	return false;
}

static void
run_one(struct scsi_nexus *nexus, unsigned lun_id, const uint8_t *cdb,
	uint32_t edtl, const uint8_t *out, size_t out_len)
{
	struct xcmd *x = calloc(1, sizeof *x);
	struct scsi_cmd *c;
	const struct scsi_op *op;
	unsigned sa;

	if (!x)
		abort();
	c = &x->cmd;
	memcpy(c->cdb, cdb, 16);
	c->cdb_len = 16;
	c->lun_id = lun_id;
	c->lun_raw = scsi_encode_lun(lun_id);
	c->lun = target_find_lun(tgt, lun_id);
	c->nexus = nexus;
	c->loop = loop;
	c->dir = out_len ? SCSI_DIR_WRITE : SCSI_DIR_READ;
	c->edtl = edtl;
	if (edtl) {
		size_t n = MIN((size_t)edtl, out_len);

		c->buf = malloc(edtl);
		if (!c->buf)
			abort();
		if (n)
			memcpy(c->buf, out, n);
		memset(c->buf + n, 0xee, edtl - n);
	}
	c->done = xcmd_done;

	ticks = 0;
	x->in_exec = true;
	scsi_cmd_exec(c);
	x->in_exec = false;
	while (x->ndone == 0 && ticks < MAX_TICKS)
		evloop_run(loop);

	FUZZ_ASSERT(x->ndone == 1, "LUN %u CDB %02x: done called %u times",
		    lun_id, cdb[0], x->ndone);
	FUZZ_ASSERT(!x->wrong_thread, "LUN %u CDB %02x: done called off the "
		    "loop thread", lun_id, cdb[0]);
	FUZZ_ASSERT(sam_status(c->status), "LUN %u CDB %02x: status 0x%02x",
		    lun_id, cdb[0], c->status);
	FUZZ_ASSERT(c->sense_len <= SCSI_SENSE_MAX,
		    "LUN %u CDB %02x: sense_len %u", lun_id, cdb[0],
		    c->sense_len);
	FUZZ_ASSERT(c->data_len <= c->edtl,
		    "LUN %u CDB %02x: data_len %u over EDTL %u (status 0x%02x)",
		    lun_id, cdb[0], c->data_len, c->edtl, c->status);
	if (c->status == SAM_STAT_CHECK_CONDITION) {
		uint8_t code = c->sense[0] & 0x7f;

		FUZZ_ASSERT(c->sense_len >= 8 && code >= 0x70 && code <= 0x73,
			    "LUN %u CDB %02x: CHECK CONDITION with sense_len "
			    "%u, response code 0x%02x", lun_id, cdb[0],
			    c->sense_len, code);
	}
	op = scsi_find_op(c->cdb, &sa);
	if (c->status == SAM_STAT_GOOD) {
		FUZZ_ASSERT(op, "CDB %02x: GOOD for an unsupported opcode",
			    cdb[0]);
		FUZZ_ASSERT(c->lun || (op->flags & OPF_NO_LUN),
			    "CDB %02x (%s): GOOD on a missing LUN", cdb[0],
			    op->name);
		FUZZ_ASSERT(!(op->flags & OPF_WRITE) || !c->lun ||
			    !c->lun->read_only,
			    "CDB %02x (%s): GOOD on read-only LUN %u", cdb[0],
			    op->name, lun_id);
	}
	free(c->buf);
	free(x);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t isid[6] = { 0x80, 0, 0, 0, 0, 1 };
	uint8_t head[18] = { 0 };
	struct scsi_nexus *nexus;
	uint32_t edtl;

	memcpy(head, data, MIN(size, sizeof head));
	edtl = get_be16(head + 16);
	fuzz_restore_luns();
	nexus = scsi_nexus_new(tgt, "iqn.2026-01.com.example:initiator", isid);
	if (!nexus)
		abort();
	for (size_t i = 0; i < ARRAY_SIZE(lun_ids); i++)
		run_one(nexus, lun_ids[i], head, edtl,
			size > sizeof head ? data + sizeof head : NULL,
			size > sizeof head ? size - sizeof head : 0);
	scsi_nexus_free(nexus);
	return 0;
}
