/*
 * sim_jobs.h - the SMSC's deferred work: delayed submit_sm_resp and delivery
 * receipts.
 *
 * All jobs sit in one hashed timing wheel of 1 ms slots (one loop timer
 * serves them all): scheduling and cancelling are constant time, and a job
 * due further out than the wheel spans waits in its slot for later turns. A
 * receipt that has been sent waits for its deliver_sm_resp; those are also
 * indexed by the deliver_sm sequence_number so the response finds its job in
 * constant time. Jobs come from a pool that grows in chunks and never
 * shrinks, so the hot path does not call malloc once warmed up.
 */
#ifndef SIM_JOBS_H
#define SIM_JOBS_H

#include <stddef.h>
#include <stdint.h>

#define SIM_JOBS_MAX 1000000      /* jobs alive at once; more are refused */
#define SIM_JOB_TEXT 80           /* octets of the message kept for the receipt text */

enum sim_job_kind {
  SIM_JOB_RESP,                   /* a delayed submit_sm_resp (then maybe a receipt) */
  SIM_JOB_RECEIPT,                /* a delivery receipt to send or resend */
};

struct sim_job {
  int64_t due;                    /* loop time in ms when the job fires */
  struct sim_job *prev, *next;    /* neighbours in its wheel slot */
  uint32_t slot;                  /* its wheel slot, SIM_JOB_IDLE when not queued */
  uint32_t ack_seq;               /* deliver_sm awaiting its response, 0 if none */
  uint8_t kind;                   /* enum sim_job_kind */
  uint8_t want_receipt;           /* SIM_JOB_RESP: a receipt follows the response */
  uint8_t attempts;               /* receipt sends so far */
  uint8_t outcome;                /* enum smpp_msg_state */
  uint32_t status;                /* SIM_JOB_RESP: command_status to answer */
  uint32_t submit_seq;            /* sequence_number of the submit_sm */
  uint64_t sess_id;               /* the session that submitted */
  uint64_t msgid_num;             /* the message id as a number */
  uint8_t msgid_fmt;              /* enum sim_msgid_fmt it was given in */
  int64_t submit_ms;              /* wall clock of the submit, ms */
  int64_t give_up;                /* loop time after which an unsendable receipt is dropped */
  uint8_t src_ton, src_npi, dst_ton, dst_npi;
  uint8_t data_coding;
  uint8_t text_len;               /* octets in text */
  char system_id[16];
  char source_addr[21];
  char dest_addr[21];
  char message_id[24];
  uint8_t text[SIM_JOB_TEXT];     /* start of the message after any UDH */
  struct sim_job *next_free;      /* pool free list */
};

#define SIM_JOB_IDLE UINT32_MAX
#define SIM_WHEEL_SLOTS 16384     /* 1 ms each: more than the default resend delay */

struct sim_jobs {
  struct sim_job *head[SIM_WHEEL_SLOTS];   /* each slot's jobs, first in first */
  struct sim_job *tail[SIM_WHEEL_SLOTS];
  uint64_t busy[SIM_WHEEL_SLOTS / 64];     /* bit set while a slot holds jobs */
  int64_t cursor;                 /* slots up to this loop time have been run */
  size_t queued;                  /* jobs in the wheel */
  uint32_t *ack_keys;             /* open-addressing table: sequence -> job; 0 = empty */
  struct sim_job **ack_vals;
  size_t ack_mask, ack_used;
  struct sim_job *free_list;
  void **chunks;                  /* every pool chunk, for sim_jobs_fini */
  size_t nchunks;
  size_t live;                    /* jobs handed out and not released */
};

/* Starts an empty wheel at loop time now. */
void sim_jobs_init(struct sim_jobs *j, int64_t now);
/* Frees every job and table; jobs still out become invalid. */
void sim_jobs_fini(struct sim_jobs *j);

/* Returns a zeroed job, or NULL when SIM_JOBS_MAX are alive. Give it back
   with sim_jobs_release. */
struct sim_job *sim_jobs_alloc(struct sim_jobs *j);
/* Returns a job to the pool, taking it out of the wheel and the ack table. */
void sim_jobs_release(struct sim_jobs *j, struct sim_job *job);

/* Queues the job to fire at due (or at the next run when due has passed),
   moving it if already queued. */
void sim_jobs_schedule(struct sim_jobs *j, struct sim_job *job, int64_t due);
/* Takes the job out of the wheel if it is there. */
void sim_jobs_unschedule(struct sim_jobs *j, struct sim_job *job);

/*
 * Runs fn on every job due at or before now, at most max of them, taking
 * each out of the wheel first. fn may schedule or release the job it is given
 * (and only that one). Returns the number run; when it is max, call again.
 */
size_t sim_jobs_run_due(struct sim_jobs *j, int64_t now, size_t max,
                        void (*fn)(void *arg, struct sim_job *job), void *arg);

/* Returns the loop time of the earliest slot holding jobs (they may be due
   only on a later turn of the wheel), or SIM_JOBS_NONE when the wheel is empty. */
#define SIM_JOBS_NONE ((int64_t)-1)
int64_t sim_jobs_next_due(const struct sim_jobs *j);

/* Records that job waits for the response to deliver_sm seq (non-zero, and
   not already waited for). */
void sim_jobs_await(struct sim_jobs *j, struct sim_job *job, uint32_t seq);
/* Finds and forgets the job waiting for seq; returns NULL when none does. */
struct sim_job *sim_jobs_take_ack(struct sim_jobs *j, uint32_t seq);

#endif
