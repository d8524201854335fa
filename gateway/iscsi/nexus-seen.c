/* nexus-seen.c: which I_T nexuses had a session before this start.
 *
 * SAM-5 §5.14 asks for POWER ON OCCURRED on every I_T nexus after a power
 * cycle.  For a gateway, a restart is the power cycle, and the nexuses
 * that existed are those whose initiator logs in again with the same ISID.
 * Their identities (initiator name, ISID, target) are appended to
 * state_dir/nexus-seen; at start-up the file is read, and a login that
 * matches an entry gets the unit attention on each LUN.  A brand-new
 * initiator gets none (it saw no power cycle), so a first INQUIRY or
 * TEST UNIT READY is never refused.  Without state_dir nothing is kept.
 * Main/loop thread only.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iscsi.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

#define NEXUS_SEEN_MAX 4096

static char **before;		/* entries from the previous run */
static size_t nbefore;
static char **now;		/* entries written in this run */
static size_t nnow;
static char *path;

static char *
key_of(const char *initiator, const uint8_t isid[6], const char *target)
{
	char *k;

	if (asprintf(&k, "%02x%02x%02x%02x%02x%02x %s %s", isid[0], isid[1],
		     isid[2], isid[3], isid[4], isid[5], target, initiator) < 0)
		return NULL;
	return k;
}

static bool
in(char **set, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(set[i], k))
			return true;
	return false;
}

void
nexus_seen_load(const char *state_dir)
{
	FILE *f;
	char line[600];

	if (!state_dir)
		return;
	if (asprintf(&path, "%s/nexus-seen", state_dir) < 0) {
		path = NULL;
		return;
	}
	f = fopen(path, "r");
	if (!f)
		return;
	before = calloc(NEXUS_SEEN_MAX, sizeof *before);
	while (before && nbefore < NEXUS_SEEN_MAX && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] && !in(before, nbefore, line))
			before[nbefore++] = strdup(line);
	}
	fclose(f);
	/* Start a fresh list: this run's nexuses are written anew. */
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: %m", path);
}

bool
nexus_seen_check(const char *initiator, const uint8_t isid[6],
		 const char *target)
{
	char *k = key_of(initiator, isid, target);
	bool seen;
	FILE *f;

	if (!k)
		return false;
	seen = in(before, nbefore, k);
	if (path && nnow < NEXUS_SEEN_MAX && !in(now, nnow, k)) {
		if (!now)
			now = calloc(NEXUS_SEEN_MAX, sizeof *now);
		f = fopen(path, "a");
		if (f && now) {
			fprintf(f, "%s\n", k);
			now[nnow++] = k;
			k = NULL;
		}
		if (f)
			fclose(f);
	}
	free(k);
	return seen;
}

void
nexus_seen_free(void)
{
	for (size_t i = 0; i < nbefore; i++)
		free(before[i]);
	for (size_t i = 0; i < nnow; i++)
		free(now[i]);
	free(before);
	free(now);
	free(path);
	before = now = NULL;
	path = NULL;
	nbefore = nnow = 0;
}
