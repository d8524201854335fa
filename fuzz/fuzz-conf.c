/* fuzz-conf.c: libFuzzer target for the map reader (conf/conf.c and
 * conf-lun.c, conf-json.c, conf-net.c): JSON parsing, verification, the
 * option table and backend key checks.
 *
 * Input: the map text (a NUL-terminated copy is parsed).  A refused map
 * must come with a message that starts with the label and fits the error
 * buffer; the same map refused into a buffer of a few bytes must give the
 * same message cut short (and never write past it).  An accepted map must
 * hold what verification promises (portals parse, names are valid iSCSI
 * names, LUN numbers unique and in range, block sizes 512 or 4096,
 * FirstBurstLength <= MaxBurstLength, CHAP secrets non-empty).  Backends
 * are configured but never opened, so no file is created.
 *
 * Relative secret_file and path values resolve against a folder that
 * does not exist.  Run with stdin on /dev/null: a map may name
 * /dev/stdin as a secret file.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/util.h"
#include "conf/conf.h"

#define LABEL "fuzz.json"
#define BASE_DIR "/nonexistent/igw-fuzz-conf"
#define ERR_SIZE 1024

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

static void
check_chap(const struct conf_chap *ch)
{
	if (!ch)
		return;
	FUZZ_ASSERT(ch->user && *ch->user, "CHAP identity without a user");
	FUZZ_ASSERT(ch->secret && ch->secret_len > 0 &&
		    strlen(ch->secret) == ch->secret_len,
		    "CHAP secret empty or of the wrong length");
}

static void
check_conf(const struct conf *c)
{
	char host[256];
	unsigned port;

	FUZZ_ASSERT(c->nportals >= 1, "accepted without a portal");
	for (size_t i = 0; i < c->nportals; i++)
		FUZZ_ASSERT(conf_parse_portal(c->portals[i], host, sizeof host,
					      &port) == 0,
			    "accepted portal '%s' does not parse",
			    c->portals[i]);
	FUZZ_ASSERT(c->io_threads >= 1 && c->io_threads <= 256,
		    "io_threads %u", c->io_threads);
	FUZZ_ASSERT(c->iscsi.first_burst_length <= c->iscsi.max_burst_length,
		    "first_burst_length %u over max_burst_length %u",
		    c->iscsi.first_burst_length, c->iscsi.max_burst_length);
	FUZZ_ASSERT(c->iscsi.queue_depth >= 1, "queue_depth 0");
	FUZZ_ASSERT(c->iscsi.max_recv_data_segment_length >= 512 &&
		    c->iscsi.max_recv_data_segment_length <= 16777215,
		    "max_recv_data_segment_length %u",
		    c->iscsi.max_recv_data_segment_length);
	check_chap(c->discovery_chap);
	check_chap(c->discovery_mutual_chap);
	FUZZ_ASSERT(!c->discovery_mutual_chap || c->discovery_chap,
		    "discovery mutual CHAP without discovery CHAP");
	for (size_t t = 0; t < c->ntargets; t++) {
		const struct conf_target *ct = &c->targets[t];

		FUZZ_ASSERT(conf_valid_iscsi_name(ct->name),
			    "accepted target name '%s'", ct->name);
		for (size_t u = 0; u < t; u++)
			FUZZ_ASSERT(strcmp(c->targets[u].name, ct->name),
				    "target '%s' twice", ct->name);
		check_chap(ct->chap);
		check_chap(ct->mutual_chap);
		FUZZ_ASSERT(!ct->mutual_chap || ct->chap,
			    "mutual CHAP without CHAP on '%s'", ct->name);
		for (size_t a = 0; a < ct->nacl; a++)
			FUZZ_ASSERT(ct->acl[a] && conf_valid_iscsi_name(ct->acl[a]),
				    "accepted acl entry '%s'",
				    ct->acl[a] ? ct->acl[a] : "(null)");
		for (size_t l = 0; l < ct->nluns; l++) {
			const struct conf_lun *cl = &ct->luns[l];

			FUZZ_ASSERT(cl->lun <= 16383, "LUN %u", cl->lun);
			FUZZ_ASSERT(cl->block_size == 512 ||
				    cl->block_size == 4096,
				    "block_size %u", cl->block_size);
			FUZZ_ASSERT(cl->backend_type && cl->pointer,
				    "LUN without backend type or pointer");
			FUZZ_ASSERT(!cl->serial || strlen(cl->serial) <= 64,
				    "serial of %zu characters",
				    strlen(cl->serial));
			for (size_t m = 0; m < l; m++)
				FUZZ_ASSERT(ct->luns[m].lun != cl->lun,
					    "LUN %u twice in '%s'", cl->lun,
					    ct->name);
			for (size_t k = 0; k < cl->nbkeys; k++)
				FUZZ_ASSERT(cl->bkeys[k].key &&
					    cl->bkeys[k].value,
					    "backend key without value");
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = malloc(size + 1);
	char *err = malloc(ERR_SIZE);
	struct conf *c;
	size_t elen;

	if (!json || !err)
		abort();
	memcpy(json, data, size);
	json[size] = '\0';
	memset(err, 0x55, ERR_SIZE);
	err[0] = '\0';

	c = conf_load_string(json, BASE_DIR, LABEL, err, ERR_SIZE);
	if (c) {
		check_conf(c);
		conf_free(c);
		goto out;
	}
	elen = strnlen(err, ERR_SIZE);
	FUZZ_ASSERT(elen < ERR_SIZE, "refusal message not NUL-terminated");
	FUZZ_ASSERT(elen > 0, "map refused without a message");
	FUZZ_ASSERT(!strncmp(err, LABEL, strlen(LABEL)),
		    "refusal message does not start with the label: '%s'", err);
	FUZZ_ASSERT(elen > strlen(LABEL) + 2,
		    "refusal message says nothing after the label: '%s'", err);

	/* Again into a buffer of a few bytes: the same message, cut. */
	{
		size_t small = 1 + size % 24;
		char *e2 = malloc(small);

		if (!e2)
			abort();
		memset(e2, 0x55, small);
		c = conf_load_string(json, BASE_DIR, LABEL, e2, small);
		FUZZ_ASSERT(!c, "map refused once, accepted the second time");
		FUZZ_ASSERT(memchr(e2, 0, small),
			    "message in a %zu-byte buffer not terminated",
			    small);
		FUZZ_ASSERT(!strncmp(e2, err, strlen(e2)),
			    "message in a %zu-byte buffer differs: '%s' vs '%s'",
			    small, e2, err);
		free(e2);
	}
out:
	free(err);
	free(json);
	return 0;
}
