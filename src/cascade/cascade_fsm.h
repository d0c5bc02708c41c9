/*
 * cascade_fsm.h - the cascade's rules as pure code: given a message, its
 * steps, one of its attempts and an event, what changes. No I/O, no SQL, no
 * clock: times come with the event, prices and step facts from the caller.
 *
 * The rules (README "Cascades"): a step waits for the level it names
 * (sent, delivered, read); a step without an address or a configured
 * channel is skipped; a step's time runs from its provider's answer; the
 * message shows the best level any attempt reached and the channel that
 * reached it first; it fails (or expires) only when no attempt reached
 * anything; a second channel that delivers too is counted as delivered
 * twice.
 *
 * The caller (the store) runs an event as: fill a cfsm_msg and a cfsm_att,
 * call cfsm_event() / cfsm_start() / cfsm_deadline(); while the result asks
 * for more (out.need: the message's other attempts, the price, whether
 * steps can be used), supply it and call again; then carry out the effects
 * in order (out.fx[]): they are the rows to write, the events and callbacks
 * to record, the notes for after the commit and the counters to count.
 * Asking only when needed keeps the common status at one read per row.
 */
#ifndef CASCADE_FSM_H
#define CASCADE_FSM_H

#include <stdint.h>

#include "core/kk_status.h"

#define CFSM_MAX_STEPS 8          /* as STORE_MAX_STEPS */
#define CFSM_MAX_ATT 16           /* a message's attempts the rules look at */
#define CFSM_MAX_FX 64
#define CFSM_NEW_ATT (-1)         /* an attempt id: the one this run started */

/* One step of a cascade: the channel, the rank it waits for (1 sent,
   2 delivered, 3 read) and its timeout (0: none). */
struct cfsm_step {
  enum kk_chan chan;
  int wait;
  int64_t timeout_ms;
};

/* Whether a step can start, as the caller found (asked by CFSM_NEED_USE). */
enum cfsm_use {
  CFSM_USE_UNKNOWN = 0,           /* not looked at yet */
  CFSM_USE_OK,
  CFSM_USE_NO_ADDRESS,            /* the message has no address for the channel */
  CFSM_USE_NO_CONFIG,             /* the channel is not configured for the account */
};

/* An attempt as the rules see it. */
struct cfsm_att {
  int64_t id;
  enum kk_chan chan;
  enum kk_status status;
  int step;
  int64_t sent_at, delivered_at, read_at;   /* 0: not reached */
  int tries;                                /* provider requests asked to be retried */
};

/* A message as the rules see it; the rules update it to its new state. */
struct cfsm_msg {
  enum kk_status status;
  enum kk_chan chan;              /* the channel it shows (KK_CHAN_NONE: none yet) */
  int step;
  int64_t attempt_id;             /* the current step's attempt (CFSM_NEW_ATT: started now) */
  int done;                       /* the cascade has ended */
  int64_t cost;
  int delivered_twice;
  int64_t expires_at;             /* 0: no validity */
  int inserting;                  /* the row is written after cfsm_start (due_at, wait_until) */
  int64_t due_at, wait_until;     /* inserting: what the new row holds (0: NULL) */
  /* Quiet hours of the recipient (the policy's, carried by the message): a
     step that falls through inside [quiet_from, quiet_to) minutes of
     quiet_tz's local day waits for their end. quiet_tz NULL: none. */
  const char *quiet_tz;
  int quiet_from, quiet_to;
  int nsteps;
  struct cfsm_step steps[CFSM_MAX_STEPS];
  enum cfsm_use use[CFSM_MAX_STEPS];
  /* Asked for by CFSM_NEED_ATTEMPTS: every attempt of the message. */
  int natt;                       /* -1: not given */
  struct cfsm_att att[CFSM_MAX_ATT];
};

/* An event about one attempt: its send's answer, a provider status, an SMS
   receipt or the last part accepted. */
struct cfsm_event {
  enum kk_status status;          /* sent, delivered, read, failed or expired */
  const char *error;              /* NULL or the reason given */
  int64_t at;
  int units;                      /* what a first "sent" bills (0: 1) */
  int64_t price;                  /* of one unit, when price_known */
  int price_known;
  int force_write;                /* write the attempt even when nothing changed
                                     (a provider id or parts to keep) */
  int unbilled;                   /* a failure its provider does not bill
                                     (money_bill.h): a charged attempt's charge
                                     comes back */
  int64_t charged;                /* unbilled: what the attempt cost so far (its
                                     cost and its message's go down by as much) */
};

/* What the caller must supply before calling again (bits of out.need). */
#define CFSM_NEED_ATTEMPTS 1u     /* msg.att / natt */
#define CFSM_NEED_PRICE 2u        /* event.price */
#define CFSM_NEED_USE 4u          /* msg.use[] from out.need_from on, up to the first usable */

enum cfsm_counter {
  CFSM_C_STARTED, CFSM_C_SKIPPED, CFSM_C_SENT, CFSM_C_DELIVERED, CFSM_C_READ, CFSM_C_FAILED,
  CFSM_C_TIMEOUT, CFSM_C_FALLTHROUGH, CFSM_C_LATE, CFSM_C_TWICE, CFSM_C_FINISHED,
  CFSM_C_HELD       /* a step that fell through held for the recipient's quiet hours */
};

enum cfsm_note { CFSM_NOTE_SMS, CFSM_NOTE_CHANNEL, CFSM_NOTE_WAIT, CFSM_NOTE_SMS_CANCEL };

enum cfsm_fx_kind {
  /* the event's attempt: status, sent_at/delivered_at/read_at (t0..t2), cost added */
  CFSM_FX_ATT_SET,
  /* a new attempt for step at t1: sending (due at t0, 0: none) or skipped (use says why);
     held for quiet hours (error quiet_hours): until t2 */
  CFSM_FX_ATT_ADD,
  /* the message moves to step (attempt_id) at t2: due_at t0, wait_until t1, shows chan */
  CFSM_FX_MSG_STEP,
  CFSM_FX_MSG_DONE,               /* the cascade ended with no step left, at t0 */
  CFSM_FX_MSG_CLEAR_DUE,          /* the SMS needs the dispatcher no more */
  CFSM_FX_MSG_WAIT,               /* the step's deadline moves to t0 */
  /* the message's status, chan, cost, delivered_twice; flags: FIN_DONE, FIN_CLEAR_DUE,
     FIN_WAIT (wait_until t0); at t1 */
  CFSM_FX_MSG_FIN,
  /* the message's event (and callback) at t0: status, chan, error, cost, attempt_id */
  CFSM_FX_EVENT,
  /* the attempt's own event "<chan>:<status>" at t0 with error */
  CFSM_FX_TRACE,
  CFSM_FX_NOTE,                   /* note (flags) for attempt_id at t0 */
  CFSM_FX_COUNT,                  /* counter (flags) of chan */
};

#define CFSM_FIN_DONE 1
#define CFSM_FIN_CLEAR_DUE 2
#define CFSM_FIN_WAIT 4

struct cfsm_fx {
  enum cfsm_fx_kind kind;
  int flags;                      /* FIN_*, the note or the counter */
  int step;
  enum kk_chan chan;
  enum kk_status status;
  enum cfsm_use use;              /* ATT_ADD */
  int64_t attempt_id;             /* CFSM_NEW_ATT: the one ATT_ADD started */
  int64_t t0, t1, t2;
  int64_t cost;                   /* ATT_SET: added to the attempt's (a refund: negative) */
  int refund;                     /* ATT_SET: the attempt, sent (charged) before,
                                     failed unbilled: its charge comes back */
  int delivered_twice;
  const char *error;              /* static text or the event's */
};

struct cfsm_out {
  unsigned need;                  /* 0: the effects are complete */
  int need_from;                  /* CFSM_NEED_USE: the first step to look at */
  int nfx;
  struct cfsm_fx fx[CFSM_MAX_FX];
};

/* A new message: starts its first usable step. */
void cfsm_start(struct cfsm_msg *m, int64_t at, struct cfsm_out *out);
/* An event about attempt a of m. */
void cfsm_event(struct cfsm_msg *m, const struct cfsm_att *a, const struct cfsm_event *ev,
                struct cfsm_out *out);
/* The deadline of m's step `step` at `at`; a is the step's attempt, NULL when it is gone. */
void cfsm_deadline(struct cfsm_msg *m, const struct cfsm_att *a, int step, int64_t at,
                   struct cfsm_out *out);

/* What an attempt has reached: 3 read, 2 delivered, 1 sent, 0 nothing. */
int cfsm_level(const struct cfsm_att *a);

#endif
