/* log.c: see log.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <errno.h>
#include <pthread.h>

#include "log.h"

bool log_debug_on[LOG_AREA__MAX];
int log_verbose;

static bool use_syslog;
static __thread char prefix[160];
static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
	const char *name;
	enum log_area area;
} debug_areas[] = {
	{ .name = "iscsi.login", .area = LOG_AREA_ISCSI_LOGIN },
	{ .name = "iscsi.pdu", .area = LOG_AREA_ISCSI_PDU },
	{ .name = "scsi", .area = LOG_AREA_SCSI },
	{ .name = "io", .area = LOG_AREA_IO },
	{ .name = "conf", .area = LOG_AREA_CONF },
};

void
log_init(bool syslog_on)
{
	use_syslog = syslog_on;
	if (use_syslog)
		openlog("iscsi-gw", LOG_PID, LOG_DAEMON);
}

int
log_set_debug_flag(const char *spec)
{
	const char *eq = strchr(spec, '=');
	size_t n = eq ? (size_t)(eq - spec) : strlen(spec);
	bool on = !eq || strcmp(eq + 1, "0") != 0;

	if (n == 3 && strncmp(spec, "all", 3) == 0) {
		for (size_t i = 0; i < LOG_AREA__MAX; i++)
			log_debug_on[i] = on;
		return 0;
	}
	for (size_t i = 0; i < sizeof debug_areas / sizeof debug_areas[0]; i++) {
		if (strlen(debug_areas[i].name) == n &&
		    strncmp(debug_areas[i].name, spec, n) == 0) {
			log_debug_on[debug_areas[i].area] = on;
			return 0;
		}
	}
	fprintf(stderr, "iscsi-gw: unknown debug flag '%.*s' (known: all",
		(int)n, spec);
	for (size_t i = 0; i < sizeof debug_areas / sizeof debug_areas[0]; i++)
		fprintf(stderr, ", %s", debug_areas[i].name);
	fprintf(stderr, ")\n");
	return -1;
}

void
log_set_prefix(const char *p)
{
	snprintf(prefix, sizeof prefix, "%s", p ? p : "");
}

static void
vlog(int prio, const char *tag, const char *fmt, va_list ap)
{
	int saved = errno;
	char msg[2048];

	errno = saved; /* so %m works */
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (use_syslog) {
		syslog(prio, "%s%s%s", prefix, prefix[0] ? ": " : "", msg);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		pthread_mutex_lock(&stderr_lock);
		fprintf(stderr, "%02d:%02d:%02d.%03ld iscsi-gw: %s%s%s%s\n",
			tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			tag, prefix, prefix[0] ? ": " : "", msg);
		pthread_mutex_unlock(&stderr_lock);
	}
	errno = saved;
}

#define DEFINE_LOG(fn, prio, tag)                                             \
	void fn(const char *fmt, ...)                                         \
	{                                                                     \
		va_list ap;                                                   \
		va_start(ap, fmt);                                            \
		vlog(prio, tag, fmt, ap);                                     \
		va_end(ap);                                                   \
	}

DEFINE_LOG(log_error, LOG_ERR, "error: ")
DEFINE_LOG(log_warn, LOG_WARNING, "warning: ")
DEFINE_LOG(log_debug_msg, LOG_DEBUG, "debug: ")

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

const char *
log_escape(char *buf, size_t bufsz, const char *s, size_t len)
{
	size_t o = 0;

	if (bufsz == 0)
		return buf;
	for (size_t i = 0; i < len && s[i]; i++) {
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= bufsz)
				break;
			buf[o++] = c;
		} else {
			if (o + 4 >= bufsz)
				break;
			snprintf(buf + o, 5, "\\x%02x", c);
			o += 4;
		}
	}
	buf[o] = '\0';
	return buf;
}
