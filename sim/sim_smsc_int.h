/*
 * sim_smsc_int.h - internals of the simulated SMSC shared by sim_smsc.c
 * (what it does with received PDUs), sim_deliver.c (receipts, MO, the job
 * timer) and sim_sess.c (connections and their buffers).
 */
#ifndef SIM_SMSC_INT_H
#define SIM_SMSC_INT_H

#include <stdint.h>
#include <uv.h>

#include "core/kk_buf.h"
#include "sim_jobs.h"
#include "sim_knobs.h"
#include "sim_ring.h"
#include "sim_rng.h"
#include "sim_smsc.h"
#include "smpp/smpp_codec.h"
#include "smpp/smpp_session.h"

#define SIM_MAX_SESSIONS 4096         /* open connections at once */
#define SIM_SLOT_BITS 16              /* low bits of a session id hold its slot */
#define SIM_RBUF (2 * SMPP_MAX_PDU_LEN)  /* read buffer: always room for a whole PDU */
#define SIM_OUT_HIGH (4u << 20)       /* queued output that pauses reading */
#define SIM_OUT_MAX (64u << 20)       /* queued output that drops the connection */
#define SIM_MAX_ACCOUNTS 4096         /* distinct system_ids with rate counters */

enum sim_bind { SIM_UNBOUND, SIM_BOUND_TX, SIM_BOUND_RX, SIM_BOUND_TRX };

/* Per system_id state shared by all its sessions. */
struct sim_account {
  char system_id[16];
  int64_t second;                     /* wall-clock second the count is for */
  int count;                          /* submits accepted in that second */
};

struct sim_sess {
  uv_tcp_t tcp;                       /* data: the smpp_session while open */
  struct smpp_session *ss;            /* framing, batched output, enquire_link */
  struct sim_smsc *smsc;
  uint64_t id;                        /* unique; low SIM_SLOT_BITS are the slot; 0 = none */
  enum sim_bind bind;
  int closing;                        /* uv_close called */
  int dirty;                          /* on the SMSC's dirty list */
  struct sim_sess *dirty_next;
  char system_id[16];
  char ctx[96];                       /* log context: "smsc[peer esme=id]" */
  struct sim_account *acct;           /* NULL until bound (or the table is full) */
  uint64_t submits;                   /* counted for disconnect_after */
};

struct sim_stats {
  uint64_t binds, bind_failures, submits;
  uint64_t throttled, queue_full, syserr, reject, bind_status, dropped;
  uint64_t delivered, undeliverable, expired;
  uint64_t receipts_sent, receipts_resent, receipts_acked, receipts_nacked;
  uint64_t receipts_failed, receipts_dropped;
  uint64_t mo_sent, disconnects, injected_disconnects, generic_nacks;
};

struct sim_smsc {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t timer;                   /* fires the earliest job */
  int64_t timer_due;                  /* loop time the timer is armed for, -1 if idle */
  int closing;
  int handles_open;                   /* listener and timer not yet closed */
  struct sim_knobs *knobs;
  struct sim_ring *ring;
  struct sim_rng rng;
  struct sim_stats stats;
  struct sim_jobs jobs;
  struct sim_sess *slots[SIM_MAX_SESSIONS];  /* slot 0 is never used */
  size_t slots_hi;                    /* slots at or above this are empty */
  size_t nsessions;                   /* open connections */
  uint64_t next_serial;               /* for session ids */
  struct sim_sess *dirty;             /* sessions with output to flush */
  char (*acc_id)[16];                 /* --accounts: system_ids */
  char (*acc_pw)[9];                  /*   and their passwords */
  size_t naccounts;                   /* 0: any bind is accepted */
  struct sim_account *acct[SIM_MAX_ACCOUNTS];
  size_t nacct;
  uint64_t next_msgid;
  uint32_t next_seq;                  /* for deliver_sm we originate */
  unsigned mo_turn;                   /* rotates MO between sessions */
  uint8_t mo_ref;                     /* concatenation reference for MO */
  int64_t date_minute;                /* cache of the last receipt date */
  char date_text[16];
};

/* sim_sess.c: connections. */
/* Listens on addr; returns 0 or KK_EIO (the reason is logged). */
int sim_sess_listen(struct sim_smsc *m, const struct sockaddr *addr);
/* Queues one PDU on the session. Returns 0, KK_ECLOSED, KK_ENOSPC (the
   session was closed for not reading) or an encoding error. */
int sim_sess_send(struct sim_sess *s, const struct smpp_pdu *pdu);
/* Starts writes for every session with queued output; every entry point that
   may queue output calls this before returning to the loop. */
void sim_sess_flush_all(struct sim_smsc *m);
/* Closes the connection now; why is a static string for the log. */
void sim_sess_stop(struct sim_sess *s, const char *why);
/* Stops reading, writes what is queued, then closes. */
void sim_sess_drain(struct sim_sess *s, const char *why);
/* Returns the open session with this id, or NULL. */
struct sim_sess *sim_sess_find(struct sim_smsc *m, uint64_t id);
/* Returns 1 when the session can take more PDUs (open, not draining, not backed up). */
int sim_sess_usable(const struct sim_sess *s);

/* sim_smsc.c: called by sim_sess.c for every decoded PDU the session does
   not answer itself. Returns 0, or KK_ENOENT for a request an SMSC does not
   take (the session answers it with generic_nack). */
int sim_smsc_on_pdu(struct sim_sess *s, const struct smpp_pdu *p);
/* sim_smsc.c: a PDU that does not decode (a request is already nacked). */
void sim_smsc_on_bad(struct sim_sess *s, const struct smpp_pdu *p, const struct smpp_err *err);
/* sim_smsc.c: helpers shared with sim_deliver.c. */
int64_t sim_wall_ms(void);
/* Writes v in hex (lower case) or decimal (enum sim_msgid_fmt) into out[24]. */
void sim_format_id(uint64_t v, int fmt, char *out);
/* Copies a C string for a log line, replacing unprintable bytes. */
void sim_printable(char *dst, size_t cap, const char *src);
/* Queues a submit_sm_resp; message_id is used only when status is ROK. */
void sim_answer_submit(struct sim_sess *s, uint32_t seq, uint32_t status,
                       const char *message_id);

/* sim_deliver.c: receipts, MO and the job timer. */
/* Queues a job for loop time due and makes sure the timer fires by then. */
void sim_deliver_schedule(struct sim_smsc *m, struct sim_job *job, int64_t due);
/* Turns a job into a receipt due after a delay drawn from dlr_delay_ms. */
void sim_deliver_receipt_later(struct sim_smsc *m, struct sim_job *job);
/* Handles a deliver_sm_resp or generic_nack answering a PDU we sent. */
void sim_deliver_answered(struct sim_smsc *m, struct sim_sess *s, const struct smpp_pdu *p);

#endif
