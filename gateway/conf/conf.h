/* conf.h: the configuration model and the JSON map reader.  Owns parsing,
 * verification (every refusal names the JSON pointer of the bad key) and
 * the table of global options.  Runs on the main thread only; a conf is
 * read-only once conf_load returns.
 */
#ifndef IGW_CONF_H
#define IGW_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf_kv {
	char *key;
	char *value;
};

/* "per_initiator": the LUN is a template; every initiator gets its own
 * image (images.c). */
enum conf_pi_kind { PI_OVERLAY, PI_FILE, PI_LVM };
enum conf_pi_policy { PI_KEEP, PI_RESET, PI_DELETE };
struct conf_pi {
	enum conf_pi_kind kind;
	enum conf_pi_policy policy;
	char *golden;		/* overlay: absolute path of the golden image */
	char *golden_format;	/* overlay: its format (raw, qcow2...) */
	uint64_t size;		/* file, lvm fresh: bytes; 0 when not given */
	char *vg, *origin, *thin_pool;	/* lvm */
	char *prefix;		/* lvm: LV names start with it */
};

struct conf_lun {
	unsigned lun;
	uint32_t block_size;
	bool block_size_set;	/* given in the map, not defaulted */
	bool read_only;
	bool thin;
	bool write_cache;
	bool fuse_writable;	/* the FUSE view may write it */
	bool removable;		/* removable medium (RMB), load/eject */
	char *serial;		/* NULL: derived from target name and LUN */
	char *backend_type;	/* NULL when per_initiator */
	struct conf_pi *pi;	/* NULL unless per_initiator */
	struct conf_kv *bkeys;	/* backend keys, as strings */
	size_t nbkeys;
	char *pointer;		/* "/targets/0/luns/1", for messages */
};

/* A CHAP identity: the user name and the secret read from secret_file
 * (its first line).  The secret is never logged. */
struct conf_chap {
	char *user;
	char *secret;
	size_t secret_len;
};

/* An address filter: "10.0.0.0/8", "2001:db8::/32", "192.0.2.7". */
struct conf_net {
	int family;		/* AF_INET, AF_INET6 */
	uint8_t addr[16];	/* network byte order, host bits cleared */
	unsigned prefix;	/* bits that must match */
};

struct conf_target {
	char *name;
	char *alias;
	struct conf_chap *chap;		/* NULL: no CHAP */
	struct conf_chap *mutual_chap;	/* NULL: target does not prove itself */
	char **acl;		/* NULL: every initiator */
	size_t nacl;
	struct conf_net *nets;	/* NULL: from any address */
	size_t nnets;
	struct conf_lun *luns;
	size_t nluns;
};

/* iSCSI settings the target offers in login, and connection timers. */
struct conf_iscsi {
	uint32_t max_recv_data_segment_length;
	uint32_t max_burst_length;
	uint32_t first_burst_length;
	bool initial_r2t;
	bool immediate_data;
	uint32_t max_outstanding_r2t;
	uint32_t queue_depth;		/* commands queued per session */
	uint32_t nop_interval;		/* seconds idle before a NOP-In */
	uint32_t nop_timeout;		/* seconds to answer it */
	uint32_t login_timeout;		/* seconds to finish login */
	uint32_t max_connections;	/* in total */
	uint32_t max_sessions_per_initiator;
	uint32_t max_buffer_mb;		/* command buffers per connection */
	/* HeaderDigest/DataDigest policy: CRC32C when the initiator
	 * prefers it (offer), CRC32C only (require), or None only (off). */
	enum { DIGESTS_OFFER = 0, DIGESTS_REQUIRE, DIGESTS_OFF }
		header_digest, data_digest;	/* "digests" sets both */
};

struct conf {
	char *path;		/* the map file, or "(built-in)" */
	char **portals;
	size_t nportals;
	char *state_dir;
	char *fuse_mount;	/* folder of the FUSE view; NULL: none */
	char *user;		/* drop root to this user after start-up */
	char *control_socket;	/* Unix socket for iscsi-gw status; NULL: none */
	char *metrics;		/* "HOST:PORT" of /metrics; NULL: none */
	struct conf_chap *discovery_chap;
	struct conf_chap *discovery_mutual_chap;
	unsigned io_threads;
	struct conf_iscsi iscsi;
	struct conf_target *targets;
	size_t ntargets;
};

/* Read and verify a map.  On error returns NULL and writes a message naming
 * the file and JSON pointer into err. */
struct conf *conf_load_file(const char *path, char *err, size_t errsz);
struct conf *conf_load_string(const char *json, const char *base_dir,
			      const char *label, char *err, size_t errsz);
void conf_free(struct conf *c);
void conf_chap_free(struct conf_chap *ch);

/* conf-diff.c: old and new maps, for a reload (reload.c). */
/* Same LUN number and every setting the same (backend type and keys in
 * order, per_initiator, block_size, flags, serial, fuse_writable,
 * removable); where
 * in the file it sits (the pointer) does not count. */
bool conf_lun_equal(const struct conf_lun *a, const struct conf_lun *b);
/* Same alias, acl and CHAP identities (secrets compared, never shown). */
bool conf_target_settings_equal(const struct conf_target *a,
				const struct conf_target *b);
/* Call fn with the name of each top-level key other than "targets" whose
 * value differs ("portals", "iscsi", "io_threads"...): a reload does not
 * apply those.  Returns how many. */
size_t conf_global_changes(const struct conf *a, const struct conf *b,
			   void (*fn)(const char *key, void *opaque),
			   void *opaque);

/* Split "HOST:PORT" / "[V6]:PORT"; host is written to hostbuf. */
int conf_parse_portal(const char *s, char *hostbuf, size_t hostsz,
		      unsigned *port);
/* "ADDR[/PREFIX]", IPv4 or IPv6. */
int conf_parse_net(const char *s, struct conf_net *net);
struct sockaddr;
/* Is sa in one of the n networks?  nets NULL: every address is. */
bool conf_net_match(const struct conf_net *nets, size_t n,
		    const struct sockaddr *sa);
/* RFC 7143 §4.2.7 name rules: iqn./eui./naa. forms. */
bool conf_valid_iscsi_name(const char *name);

#endif
