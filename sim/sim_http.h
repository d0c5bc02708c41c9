/*
 * sim_http.h - the simulator's HTTP control API (libmicrohttpd, driven from
 * the libuv loop, so handlers run on the loop thread and touch the SMSC
 * directly).
 *
 *   GET  /healthz            200 "ok"
 *   GET  /stats              SMSC counters
 *   GET  /config             every knob
 *   POST /config             set any subset of knobs; answers every knob
 *   GET  /submits            recorded submits, oldest first; query: dest,
 *                            system_id, since (ms), limit (default 100)
 *   POST /mo                 {"from","to","text","system_id"?} -> {"sent":n}
 *   POST /reset              zero the counters and clear the submit ring
 *
 * Errors are {"error":{"code":"...","message":"..."}} with a fitting status.
 */
#ifndef SIM_HTTP_H
#define SIM_HTTP_H

#include <uv.h>

#include "sim_knobs.h"
#include "sim_ring.h"
#include "sim_smsc.h"

struct sim_http;

struct sim_http_opts {
  const struct sockaddr *addr;   /* where to listen */
  struct sim_smsc *smsc;
  struct sim_knobs *knobs;       /* changed by POST /config */
  struct sim_ring *ring;
};

/*
 * Starts the server. Returns 0 with *out set, or a negative KK_E* code (the
 * reason is logged) with *out NULL.
 */
int sim_http_start(uv_loop_t *loop, const struct sim_http_opts *o, struct sim_http **out);
/* Stops serving and closes the loop handles. */
void sim_http_close(struct sim_http *h);
/* Frees the server; call after sim_http_close once uv_run has returned. */
void sim_http_free(struct sim_http *h);

#endif
