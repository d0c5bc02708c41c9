/*
 * sim_smtp.h - the simulator's SMTP sink: a minimal ESMTP server on the
 * libuv loop for kaskad's e-mail channel.
 *
 * It speaks EHLO/HELO, AUTH PLAIN and LOGIN (any credentials pass), MAIL,
 * RCPT, DATA (dot-stuffing undone, at most SIM_SMTP_DATA_MAX bytes), RSET,
 * NOOP and QUIT, line by line (pipelined commands are answered in order).
 * A recipient whose local part is "nobody", whose domain is "invalid.test",
 * or who is not reached under the e-mail channel's reach knob is refused
 * with 550. Each accepted message is recorded in the channel ring (channel
 * "email") and counted in the channel counters. Idle connections are closed
 * after idle_ms.
 */
#ifndef SIM_SMTP_H
#define SIM_SMTP_H

#include <uv.h>

#include "sim_chan.h"

#define SIM_SMTP_LINE_MAX 4096            /* command line, without CRLF */
#define SIM_SMTP_DATA_MAX (10u << 20)     /* message bytes */
#define SIM_SMTP_IDLE_MS 60000

struct sim_smtp;

struct sim_smtp_opts {
  const struct sockaddr *addr;            /* where to listen */
  struct sim_chan *chan;                  /* ring, counters and the reach knob */
  int idle_ms;                            /* 0 = SIM_SMTP_IDLE_MS */
};

/*
 * Starts listening. Returns 0, or KK_EIO when it cannot listen (logged); in
 * both cases *out must be shut down with sim_smtp_stop and sim_smtp_free.
 */
int sim_smtp_start(uv_loop_t *loop, const struct sim_smtp_opts *o, struct sim_smtp **out);
/* Closes the listener and every connection. */
void sim_smtp_stop(struct sim_smtp *s);
/* Frees the sink; call after sim_smtp_stop once uv_run has returned. */
void sim_smtp_free(struct sim_smtp *s);

#endif
