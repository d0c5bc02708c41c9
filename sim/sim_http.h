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
 *   POST /reset              zero the counters, clear the submit ring, the
 *                            channel request ring, channel counters and
 *                            pending callbacks; body {"apps":true} (optional)
 *                            also forgets the channel apps
 *
 * Channel control paths (served by sim_chan.c):
 *   GET  /apps               every provider app, tokens in full
 *   POST /apps               {"channel","token","callback_url"?,"secret"?,
 *                            "group_id"?,"confirmation"?,"verify_token"?,
 *                            "phone_number_id"?}: upsert; a VK app with a
 *                            callback_url is confirmed and a WhatsApp one
 *                            verified first; answers the app
 *   GET  /channels/config    per-channel knobs; POST sets any subset:
 *                            {"vk":{"reach","read","deliver_ms","read_ms",
 *                            "throttle","server_error","fail"},...}
 *   GET  /channels/requests  recorded provider requests, oldest first; query:
 *                            channel, since_seq, limit (default 100)
 *                            -> {"requests":[...],"next_seq":n}
 *   GET  /channels/stats     per-channel counters
 *   POST /telegram/update    {"token","chat_id","text"}: POSTs an update to
 *                            the bot's webhook, answers its status
 *   POST /whatsapp/inbound   {"token","from","text"?}: opens the 24-hour
 *                            window, POSTs the inbound message webhook
 *   POST /viber/inbound      {"token","user_id","text"}: a signed message
 *                            event to the bot's webhook
 *   POST /vk/inbound         {"token","user_id","text"}: a message_new event
 *                            to the community's callback URL
 *
 * Provider paths (served by sim_chan.c, in each provider's own format):
 *   POST /method/messages.send                 VK
 *   POST /pa/set_webhook, /pa/send_message     Viber bot
 *   POST /vbm/v1/messages                      Viber business (partner API)
 *   POST /bot<token>/{setWebhook,sendMessage,sendPhoto,getMe,deleteWebhook,
 *        getWebhookInfo}                       Telegram Bot API
 *   POST /sendVerificationMessage              Telegram Gateway
 *   POST /v<N>.<M>/<phone_number_id>/messages  WhatsApp Cloud API
 *
 * Control API errors are {"error":{"code":"...","message":"..."}} with a
 * fitting status.
 */
#ifndef SIM_HTTP_H
#define SIM_HTTP_H

#include <uv.h>

#include "sim_chan.h"
#include "sim_hlr.h"
#include "sim_knobs.h"
#include "sim_ring.h"
#include "sim_smsc.h"

struct sim_http;

struct sim_http_opts {
  const struct sockaddr *addr;   /* where to listen */
  struct sim_smsc *smsc;
  struct sim_knobs *knobs;       /* changed by POST /config */
  struct sim_ring *ring;
  struct sim_chan *chan;         /* provider and channel paths; may be NULL */
  struct sim_hlr *hlr;           /* the /hlr paths; may be NULL */
};

/*
 * Starts the server. Returns 0 with *out set, or a negative KK_E* code (the
 * reason is logged) with *out NULL.
 */
int sim_http_start(uv_loop_t *loop, const struct sim_http_opts *o, struct sim_http **out);
/* Stops serving and closes the loop handles. */
void sim_http_stop(struct sim_http *h);
/* Frees the server; call after sim_http_stop once uv_run has returned. */
void sim_http_free(struct sim_http *h);

#endif
