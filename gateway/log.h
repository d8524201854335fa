/* log.h: logging.  Owns the log sink (stderr in the foreground, syslog
 * otherwise), the debug flags set by -D area=1 and the thread-local prefix
 * naming connection, initiator and target.  Any thread may call these.
 */
#ifndef IGW_LOG_H
#define IGW_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_area {
	LOG_AREA_ISCSI_LOGIN = 0,
	LOG_AREA_ISCSI_PDU,
	LOG_AREA_SCSI,
	LOG_AREA_IO,
	LOG_AREA_CONF,
	LOG_AREA__MAX,
};

extern bool log_debug_on[LOG_AREA__MAX];
extern int log_verbose;

void log_init(bool use_syslog);
/* Parse "iscsi.login=1"; returns 0 or -1 with a message printed. */
int log_set_debug_flag(const char *spec);
void log_set_prefix(const char *prefix);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_debug(area, ...)                                                  \
	do {                                                                  \
		if (log_debug_on[area])                                       \
			log_debug_msg(__VA_ARGS__);                           \
	} while (0)

/* Copy an untrusted string (initiator name...) into buf, escaping anything
 * that is not printable ASCII as \xNN.  Always NUL-terminates.
 */
const char *log_escape(char *buf, size_t bufsz, const char *s, size_t len);

#endif
