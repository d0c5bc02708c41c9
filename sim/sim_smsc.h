/*
 * sim_smsc.h - the simulated SMSC: an SMPP 3.4 server that answers binds
 * and submits, sends delivery receipts and MO messages, and injects the
 * errors a real SMSC produces (throttling, full queues, rejects, drops).
 *
 * Everything runs on the caller's libuv loop. The knobs and the submit ring
 * belong to the caller and are read live.
 */
#ifndef SIM_SMSC_H
#define SIM_SMSC_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "sim_knobs.h"
#include "sim_ring.h"

struct sim_smsc;

struct sim_smsc_opts {
  const struct sockaddr *addr;   /* where to listen */
  const char *accounts;          /* "id:password,..." or NULL to accept any bind */
  uint64_t seed;                 /* outcome and error draws, message ids */
  struct sim_knobs *knobs;       /* read on every submit */
  struct sim_ring *ring;         /* receives every submit */
};

/*
 * Starts listening. On success *out is the SMSC. On failure returns
 * KK_EINVAL (malformed accounts; *out is NULL) or KK_EIO (cannot listen, the
 * reason is logged; *out must still be shut down with sim_smsc_stop and
 * sim_smsc_free like a running SMSC).
 */
int sim_smsc_start(uv_loop_t *loop, const struct sim_smsc_opts *o, struct sim_smsc **out);

/* Closes the listener, every session and the timer; pending work is dropped. */
void sim_smsc_stop(struct sim_smsc *m);
/* Frees the SMSC; call after sim_smsc_stop once uv_run has returned. */
void sim_smsc_free(struct sim_smsc *m);

/* Returns a new JSON object of counters (GET /stats); the caller json_decref()s it. */
json_t *sim_smsc_stats(const struct sim_smsc *m);
/* Zeroes the counters and restarts the disconnect_after count of every session. */
void sim_smsc_reset(struct sim_smsc *m);
/* Tells the SMSC the knobs changed: disconnect_after counts restart from zero. */
void sim_smsc_knobs_changed(struct sim_smsc *m);

struct sim_mo {
  const char *from;              /* sender MSISDN (digits, optional +) or alphanumeric */
  const char *to;                /* the service address, e.g. a short code or name */
  const char *text;              /* UTF-8 */
  const char *system_id;         /* bound system_id to deliver to, or NULL for any */
};

/*
 * Sends an MO message as deliver_sm (GSM-7 when the text fits, else UCS-2;
 * concatenated parts with a UDH when it is long) to one bound receiver or
 * transceiver session, rotating between them. *sent is the number of
 * deliver_sm PDUs. Returns 0, KK_ENOENT when no such session is bound,
 * KK_EINVAL for a bad address or empty text, KK_EUTF8 or KK_ETOOBIG.
 */
int sim_smsc_send_mo(struct sim_smsc *m, const struct sim_mo *mo, int *sent);

#endif
