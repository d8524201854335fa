/* iscsi.h: the iSCSI layer (RFC 7143, ErrorRecoveryLevel 0).  Owns PDU
 * framing, login and key negotiation, sessions and the CmdSN window, SCSI
 * command data transfer (immediate, unsolicited and R2T-solicited Data-Out,
 * Data-In with phase collapse), NOP, Logout, Reject, task management and
 * SendTargets.  It never sees a backend: SCSI commands go to the SCSI layer
 * as scsi_cmd and come back through their done callback.
 *
 * Threads: one network loop owns every connection for its life, so
 * connection, session and task state needs no lock.  The session table is
 * only touched on that loop too.
 *
 *   socket --rx state machine--> PDU --dispatch--> login.c / cmd.c / tmf.c
 *   cmd.c --scsi_cmd_exec--> scsi/ --(workers)--> done --> tx queue --> socket
 */
#ifndef IGW_ISCSI_H
#define IGW_ISCSI_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>
#include <sys/socket.h>

#include "scsi/scsi.h"
#include "io/io.h"

struct conf;
struct lunmap;
struct target;

/* Opcodes (RFC 7143 §11.2.1.2). */
#define ISCSI_OP_NOP_OUT 0x00
#define ISCSI_OP_SCSI_CMD 0x01
#define ISCSI_OP_TMF_REQ 0x02
#define ISCSI_OP_LOGIN_REQ 0x03
#define ISCSI_OP_TEXT_REQ 0x04
#define ISCSI_OP_DATA_OUT 0x05
#define ISCSI_OP_LOGOUT_REQ 0x06
#define ISCSI_OP_SNACK 0x10
#define ISCSI_OP_NOP_IN 0x20
#define ISCSI_OP_SCSI_RSP 0x21
#define ISCSI_OP_TMF_RSP 0x22
#define ISCSI_OP_LOGIN_RSP 0x23
#define ISCSI_OP_TEXT_RSP 0x24
#define ISCSI_OP_DATA_IN 0x25
#define ISCSI_OP_LOGOUT_RSP 0x26
#define ISCSI_OP_R2T 0x31
#define ISCSI_OP_ASYNC 0x32
#define ISCSI_OP_REJECT 0x3f

#define ISCSI_BHS_LEN 48
#define ISCSI_RSVD_TAG 0xffffffffu

/* Reject reasons (§11.17.1). */
#define REJECT_DIGEST_ERROR 0x02
#define REJECT_SNACK 0x03
#define REJECT_PROTOCOL_ERROR 0x04
#define REJECT_CMD_NOT_SUPPORTED 0x05
#define REJECT_IMMEDIATE_CMD 0x06
#define REJECT_TASK_IN_PROGRESS 0x07
#define REJECT_INVALID_PDU_FIELD 0x09
#define REJECT_OUT_OF_RESOURCES 0x0a
#define REJECT_WAITING_FOR_LOGOUT 0x0c

/* Login status class/detail (§11.13.5), as 0xCCDD. */
#define LOGIN_OK 0x0000
#define LOGIN_INITIATOR_ERROR 0x0200
#define LOGIN_AUTH_FAILURE 0x0201
#define LOGIN_AUTHORIZATION_FAILURE 0x0202
#define LOGIN_NOT_FOUND 0x0203
#define LOGIN_TARGET_REMOVED 0x0204
#define LOGIN_UNSUPPORTED_VERSION 0x0205
#define LOGIN_TOO_MANY_CONNECTIONS 0x0206
#define LOGIN_MISSING_PARAMETER 0x0207
#define LOGIN_CANT_INCLUDE_IN_SESSION 0x0208
#define LOGIN_SESSION_TYPE_UNSUPPORTED 0x0209
#define LOGIN_SESSION_DOES_NOT_EXIST 0x020a
#define LOGIN_INVALID_DURING_LOGIN 0x020b
#define LOGIN_TARGET_ERROR 0x0300
#define LOGIN_SERVICE_UNAVAILABLE 0x0301
#define LOGIN_OUT_OF_RESOURCES 0x0302

/* Bounds on what an initiator can make us hold. */
#define ISCSI_LOGIN_TEXT_MAX 65536	/* accumulated login/text keys */
#define ISCSI_LOGIN_KEYS_MAX 256

/* Negotiated session-wide values (§13). */
struct iscsi_params {
	uint32_t max_connections;
	bool initial_r2t;
	bool immediate_data;
	uint32_t max_burst_length;
	uint32_t first_burst_length;
	uint32_t default_time2wait;
	uint32_t default_time2retain;
	uint32_t max_outstanding_r2t;
	bool data_pdu_in_order;
	bool data_sequence_in_order;
	uint32_t error_recovery_level;
	bool header_digest;
	bool data_digest;
	uint32_t max_send_dsl;		/* the initiator's MaxRecvDSL */
	uint32_t max_recv_dsl;		/* ours, declared */
	bool if_marker, of_marker;
	uint32_t protocol_level;
	/* Offer only: CRC32C required (None refused) per digest. */
	bool header_digest_required, data_digest_required;
};

/* The result of parsing "key=value\0..." text. */
struct iscsi_kv {
	char *key;
	char *value;
};

/* nexus-seen.c: POWER ON OCCURRED for nexuses that outlived a restart. */
void nexus_seen_load(const char *state_dir);
bool nexus_seen_check(const char *initiator, const uint8_t isid[6],
		      const char *target);
void nexus_seen_free(void);
/* tmf.c: the scsi_abort_hook. */
void tmf_pr_abort(struct target *t, struct lun *l, const char *initiator,
		  const uint8_t *isid, const struct scsi_cmd *except);

/* keys.c */
/* Split a text segment into pairs.  Returns count or -1 on a format error
 * (no '=', bad key name, over-long key or value, too many keys). */
int iscsi_text_parse(const uint8_t *data, uint32_t len, struct iscsi_kv *out,
		     int max);
/* A growing text buffer for responses. */
struct iscsi_text {
	char *buf;
	uint32_t len, cap;
	bool oom;
};
void iscsi_text_add(struct iscsi_text *t, const char *key, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
void iscsi_text_free(struct iscsi_text *t);

enum key_phase { KEY_PHASE_SECURITY, KEY_PHASE_OPERATIONAL, KEY_PHASE_FFP };
/* Negotiate one operational key: updates p, appends the answer to out.
 * Returns 0, or -1 when the key is not an operational key (caller
 * handles it). */
int iscsi_negotiate_key(struct iscsi_params *p, const struct iscsi_params *offer,
			enum key_phase phase, bool leading, const char *key,
			const char *value, struct iscsi_text *out);
void iscsi_params_defaults(struct iscsi_params *p);
/* What this target offers, from the conf. */
void iscsi_params_offer(struct iscsi_params *p, const struct conf *c);
/* Is item one of the comma-separated values? */
bool iscsi_list_has(const char *list, const char *item);
/* Parse a numeric value (decimal or 0x hex); -1 if malformed. */
int iscsi_parse_number(const char *s, uint64_t *out);

struct iscsi_conn;
struct iscsi_session;

/* An outgoing PDU on a connection's tx queue. */
struct tx_pdu {
	struct tx_pdu *next;
	uint8_t bhs[ISCSI_BHS_LEN];
	const uint8_t *data;		/* lent: points into task or owned */
	uint32_t data_len;
	/* Or the data is in a file: bytes [file_off, file_off+data_len)
	 * of task's command data, sent with scsi_cmd_send_data. */
	bool from_file;
	uint32_t file_off;
	void *owned;			/* freed when sent */
	struct iscsi_task *task;	/* reference released when sent */
	size_t sent;
	uint8_t hdig[4], ddig[4];	/* CRC32C digests, little-endian */
	uint8_t hdig_len, ddig_len;	/* 0 or 4 */
};

enum task_state {
	TASK_DATA_OUT,		/* waiting for write data */
	TASK_QUEUED,		/* waiting for CmdSN order (never used now) */
	TASK_EXEC,		/* in the SCSI layer */
	TASK_DONE,		/* response queued */
};

struct iscsi_tmf;

struct iscsi_task {
	struct scsi_cmd cmd;		/* first: container_of */
	struct iscsi_conn *conn;
	struct iscsi_task *next, *prev;	/* conn->tasks */
	enum task_state state;
	unsigned refs;			/* task list + tx PDUs */
	bool aborted;
	bool counted;			/* holds a CmdSN window slot */
	uint32_t itt;
	uint32_t cmdsn;
	uint32_t ttt;
	/* Write data (§10.7, §10.8). */
	uint32_t received;		/* bytes in order from offset 0 */
	uint32_t unsol_left;		/* unsolicited bytes still allowed */
	bool unsol_open;		/* unsolicited sequence in progress */
	uint32_t unsol_datasn;
	uint32_t r2t_next;		/* next offset to solicit */
	uint32_t r2t_sn;
	uint32_t r2t_outstanding;
	uint32_t seq_datasn;		/* expected DataSN in current burst */
	uint32_t burst_end;		/* end offset of the oldest burst */
	/* Data-In */
	uint32_t data_sn;
	uint32_t buf_alloc;		/* bytes counted in conn->buf_bytes */
	struct iscsi_tmf *tmf;		/* a TMF waiting for this task */
	/* A PREEMPT AND ABORT holds its own status until the commands it
	 * aborted have left the SCSI layer (tmf_pr_abort): while holds is
	 * non-zero, task_done only notes that it came. */
	unsigned holds;
	bool done_deferred;
};

struct iscsi_tmf {
	struct iscsi_conn *conn;
	/* Not a TMF but a PREEMPT AND ABORT waiting for the commands it
	 * aborted: when pending reaches 0 its task is released (holds),
	 * and no TMF response is sent. */
	struct iscsi_task *hold;
	uint32_t itt;
	bool cold;			/* TARGET COLD RESET: close after */
	uint8_t response;
	unsigned pending;
};

enum conn_state {
	CONN_LOGIN,
	CONN_FFP,
	CONN_LOGOUT,		/* logout response queued; close when sent */
	CONN_CLOSED,
};

enum rx_stage { RX_BHS, RX_AHS, RX_HDIG, RX_DATA, RX_PAD, RX_DDIG };

struct login_state;

struct iscsi_conn {
	struct ev_handler ev;
	struct evloop *loop;
	struct iscsi_conn *next, *prev;	/* all connections */
	enum conn_state state;
	unsigned refs;
	bool draining;			/* shutdown: no new commands */
	bool login_busy;		/* login waits for image provisioning */
	uint32_t ev_mask;		/* the events registered with epoll */
	bool in_event;			/* in conn_event, which flushes */
	bool flush_queued;		/* on iscsi_g.flush_list */
	struct iscsi_conn *flush_next;
	char peer[80];			/* "ip:port", for logs */
	struct sockaddr_storage peer_sa;	/* for a target's "networks" */
	bool peer_loopback;		/* peer_sa is a loopback address */
	char local_host[64];
	unsigned local_port;
	uint16_t cid;
	time_t created, last_rx;
	time_t logout_at;		/* when CONN_LOGOUT began (tick) */
	/* Receive state machine. */
	uint8_t *rxb;			/* read-ahead, in full feature phase */
	uint32_t rxb_off, rxb_len;	/* unconsumed: [rxb_off, rxb_len) */
	bool rx_drained;		/* a read came back short: wait for
					 * epoll before the next */
	enum rx_stage rx_stage;
	uint8_t rx_bhs[ISCSI_BHS_LEN];
	uint32_t rx_got;
	uint8_t rx_ahs[1024];
	uint32_t rx_ahs_len;
	uint8_t *rx_data;		/* destination of the data segment */
	uint8_t *rx_data_owned;		/* malloc'd: freed after dispatch */
	uint32_t rx_dsl;
	uint8_t rx_pad[4];
	uint8_t rx_dig[4];
	bool rx_hd, rx_dd;		/* digests on for this PDU */
	struct iscsi_task *rx_task;	/* Data-Out going into a task */
	bool rx_discard;		/* data segment read and dropped */
	int rx_reject;			/* >0: reject reason after reading */
	/* Transmit queue. */
	struct tx_pdu *tx_head, *tx_tail;
	size_t tx_bytes;
	/* Sequence numbers. */
	uint32_t stat_sn;
	uint32_t exp_stat_sn;
	/* Login and session. */
	struct login_state *login;
	struct iscsi_session *sess;
	struct iscsi_params params;	/* negotiated */
	/* Tasks. */
	struct iscsi_task *tasks;
	unsigned ntasks;
	uint64_t buf_bytes;		/* command buffers held by tasks */
	uint32_t next_ttt;
	/* Target-initiated NOP. */
	uint32_t ping_ttt;
	time_t ping_sent;
	/* Pending text response (SendTargets continuation). */
	uint8_t *text_pending;
	uint32_t text_pending_len, text_pending_off;
	uint32_t text_ttt;
	uint32_t text_itt;
	/* Logout waiting for tasks to finish. */
	bool logout_pending;
	uint32_t logout_itt;
	uint8_t logout_response;
};

struct iscsi_session {
	struct iscsi_conn *conn;	/* MaxConnections=1 */
	struct iscsi_session *next;	/* session table */
	bool discovery;
	struct target *target;
	char initiator[224];
	char initiator_alias[256];
	uint8_t isid[6];
	uint16_t tsih;
	uint32_t exp_cmd_sn;
	uint32_t max_cmd_sn;
	uint32_t active;		/* commands holding a window slot */
	struct iscsi_pdu_q *pending;	/* out-of-order commands */
	unsigned npending;
	struct scsi_nexus *nexus;
	/* Per-initiator images, indexed by the template's slot (lunmap.h;
	 * NULL for the target's ordinary LUNs); the session holds a
	 * reference on each.  npi entries: slots added later are past it. */
	struct lun **pi;
	size_t npi;
	/* SCSI commands answered and their data bytes (status, metrics);
	 * folded into metrics.h's initiator totals by session_free. */
	uint64_t stat_commands, stat_read_bytes, stat_write_bytes;
};

/* Global state of the iSCSI layer: set up by iscsi_start. */
struct iscsi_globals {
	const struct conf *conf;
	struct lunmap *map;
	struct evloop *loop;
	struct iscsi_params offer;
	struct iscsi_conn *conns;
	unsigned nconns;
	struct iscsi_session *sessions;
	uint16_t next_tsih;
	bool shutting_down;
	bool reap_wanted;		/* a connection closed: reap soon */
	/* Connections with responses from completions to send: flushed
	 * once after the batch of events (each holds a reference). */
	struct iscsi_conn *flush_list;
};
extern struct iscsi_globals iscsi_g;

/* portal.c */
int iscsi_start(const struct conf *c, struct lunmap *m, struct evloop *loop);
/* Stop listening and drain every connection within timeout seconds;
 * iscsi_shutdown_poll is true once every connection is gone. */
void iscsi_begin_shutdown(unsigned timeout);
bool iscsi_shutdown_poll(void);
void iscsi_stop_listening(void);

/* pdu.c */
static inline uint8_t bhs_opcode(const uint8_t *b) { return b[0] & 0x3f; }
static inline bool bhs_immediate(const uint8_t *b) { return b[0] & 0x40; }
static inline uint32_t bhs_dsl(const uint8_t *b)
{
	return (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
}
void bhs_set_dsl(uint8_t *b, uint32_t len);
struct tx_pdu *tx_pdu_new(uint8_t opcode);
void tx_pdu_set_data(struct tx_pdu *p, const void *data, uint32_t len,
		     bool copy);
void conn_queue(struct iscsi_conn *c, struct tx_pdu *p);
void conn_flush(struct iscsi_conn *c);
/* Fill StatSN (advancing it when advance), ExpCmdSN, MaxCmdSN. */
void conn_fill_sn(struct iscsi_conn *c, uint8_t *bhs, bool advance);
void conn_send_reject(struct iscsi_conn *c, uint8_t reason,
		      const uint8_t *bhs);

/* conn.c */
void conn_accept(int fd, const char *peer, const char *lhost, unsigned lport);
/* May the initiator of c use target t: its name in the acl, its address
 * in the networks? */
bool conn_allowed(const struct iscsi_conn *c, const struct target *t,
		  const char *initiator);
void conn_close(struct iscsi_conn *c, const char *why);
void conn_get(struct iscsi_conn *c);
void conn_put(struct iscsi_conn *c);
void conn_tick(void *opaque);
void conn_reap(void);
/* After each batch of events: reap closed connections at once, so a
 * session's images are released as soon as its connection is gone. */
void conn_after_batch(void *opaque);
/* Send c's queued responses after this batch of events, with those of
 * every other completion of the batch: one send per connection. */
void conn_flush_later(struct iscsi_conn *c);
/* Flush the connections conn_flush_later queued (conn_after_batch). */
void conn_flush_queued(void);
void conn_log_prefix(struct iscsi_conn *c);
/* Reading resumes when the connection can take more commands. */
void conn_update_events(struct iscsi_conn *c);

/* login.c */
/* The target a connection still in login has chosen, or NULL. */
struct target *login_target(const struct iscsi_conn *c);
void login_handle(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data,
		  uint32_t dsl);
void login_free(struct iscsi_conn *c);
void login_reject_invalid(struct iscsi_conn *c, const uint8_t *bhs);
void login_reject_oversize(struct iscsi_conn *c, const uint8_t *bhs);

/* session.c */
struct iscsi_session *session_new(struct iscsi_conn *c);
void session_free(struct iscsi_session *s);
/* The LUN a command of s addresses: the target's, or for a per-initiator
 * template this initiator's image.  NULL: no such LUN. */
struct lun *session_lun(struct iscsi_session *s, unsigned id);
struct iscsi_session *session_find(const char *initiator, const uint8_t isid[6],
				   struct target *t, bool discovery);
uint16_t session_alloc_tsih(void);
/* A reload (reload.c) dropped target t: close every connection logged in
 * to it, or logging in.  Loop thread. */
void session_close_target(struct target *t, const char *why);
/* Close the sessions of t whose initiator its acl no longer allows. */
void session_recheck_acl(struct target *t);
/* Does any connection (closed ones not yet reaped included) still point
 * at t?  The reload's reaper frees a dropped target only after. */
bool session_target_in_use(const struct target *t);
/* Feed a command PDU through the CmdSN window (§4.2.2).  Takes ownership
 * of data.  Returns after dispatching every command now in order. */
void session_cmd_pdu(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data,
		     uint32_t dsl);
void session_update_window(struct iscsi_session *s);
void session_slot_release(struct iscsi_session *s);

/* cmd.c: SCSI command, Data-Out, R2T, Data-In, SCSI Response */
void cmd_scsi(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data, uint32_t dsl);
/* Data-Out header arrived: decide where its payload goes. */
void cmd_data_out_header(struct iscsi_conn *c);
void cmd_data_out_done(struct iscsi_conn *c);
void cmd_data_out_digest_error(struct iscsi_conn *c);
void task_put(struct iscsi_task *t);
/* Drop one hold of t (struct iscsi_task); its deferred completion runs
 * when the last goes. */
void task_hold_release(struct iscsi_task *t);
struct iscsi_task *task_find(struct iscsi_conn *c, uint32_t itt);
/* Abort: no response will be sent for it.  A TMF may wait for it. */
void task_abort(struct iscsi_task *t, struct iscsi_tmf *tmf);

/* tmf.c */
void tmf_handle(struct iscsi_conn *c, uint8_t *bhs);
void tmf_task_finished(struct iscsi_tmf *tmf);

/* discovery.c: Text requests, SendTargets. */
void text_handle(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data,
		 uint32_t dsl);

/* misc PDUs (conn.c) */
void nop_out_handle(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data,
		    uint32_t dsl);
void logout_handle(struct iscsi_conn *c, uint8_t *bhs);
void logout_maybe_finish(struct iscsi_conn *c);

#endif
