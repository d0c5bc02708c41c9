/*
 * sim_chan_int.h - what the files of the fake messenger providers share:
 * the module's state (struct sim_chan), its apps, ring, callback jobs and
 * deferred answers, and the helpers each file offers the others. sim_chan.c
 * is the core (knobs, the control API, entry points); sim_chan_util.c,
 * sim_chan_apps.c and sim_chan_cb.c hold the shared parts; sim_vk.c,
 * sim_viber.c, sim_telegram.c and sim_whatsapp.c one provider each.
 */
#ifndef SIM_CHAN_INT_H
#define SIM_CHAN_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sim_chan.h"
#include "sim_rng.h"

#include "core/kk_buf.h"

struct http_client;
struct sim_post;

/* JSON text written into a capped buffer; the first failure sticks. */
struct jw {
  struct kk_buf b;
  int rc;
};

#define LOGCTX "chan"
#define REPLY_MAX (16u << 20)         /* cap of one answer we build */
#define CB_TIMEOUT_MS 5000            /* one callback POST, whole */
#define CB_RETRY_MS 1000              /* pause before resending a failed callback */
#define CB_ATTEMPTS 4                 /* first send and 3 retries */
#define GW_ATTEMPTS 11                /* Gateway reports: first send and 10 retries */
#define CB_INFLIGHT_MAX 1024          /* callbacks being sent at once, as many as
                                         connections are kept to a host:
                                         providers call back from many servers, and
                                         fewer would cap callbacks at this many per
                                         kaskad commit */
#define CB_QUEUED_MAX 2000000         /* callbacks waiting; more are dropped (counted) */
#define CB_BATCH 4096                 /* callbacks started per timer run */
#define DEDUP_GEN 524288              /* VK random_ids per generation; two are kept */
#define WINDOW_MAX 1000000            /* WhatsApp windows per app; more clear the table */
#define WINDOW_MS (24LL * 3600 * 1000)
#define APP_BUCKETS 1024
#define APPS_MAX 100000
#define REQUESTS_LIMIT_DEFAULT 100
#define REQUESTS_ANSWER_MAX (512u << 20)
#define MS_MAX 86400000
#define VIBER_TOKEN_BASE 5741311803571721087ull
#define CHAT_HOST "SN-sim"
#define VK_API_VERSION "5.199"
#define WA_DISPLAY_PHONE "15550000000"
#define TG_BOT_ID 1

extern const char *const chan_names[SIM_CH_COUNT];

/* How a provider request ended; recorded as the request's outcome. */
enum outcome {
  OUT_ACCEPTED,
  OUT_DUPLICATE,                      /* VK random_id repeat: answered, nothing sent */
  OUT_UNAUTHORIZED,
  OUT_BAD_REQUEST,
  OUT_THROTTLED,
  OUT_SERVER_ERROR,
  OUT_UNREACHED,
  OUT_NOT_FOUND,
  OUT_INVALID_URL,                    /* Viber set_webhook: the webhook did not answer 200 */
  OUT_NO_SUCH_USER,                   /* SMTP */
  OUT_TOO_BIG,                        /* SMTP */
  OUT_COUNT
};
#define OUT_FIRST_REFUSED OUT_UNAUTHORIZED

extern const char *const out_names[OUT_COUNT];

struct chan_stats {
  uint64_t n[OUT_COUNT];              /* requests by outcome */
  uint64_t messages;                  /* sends accepted (a message id given) */
  uint64_t cb_sent;                   /* callback POSTs started (retries included) */
  uint64_t cb_ok;                     /* ... answered 2xx (Gateway: 200) */
  uint64_t cb_failed;                 /* ... answered otherwise or not at all */
  uint64_t cb_given_up;               /* callbacks dropped after their last attempt */
  uint64_t cb_dropped;                /* callbacks not queued: the queue was full */
  uint64_t queued;                    /* callbacks waiting now */
  uint64_t inflight;                  /* callbacks being sent now */
};

/* A map from non-zero 64-bit keys to values, open addressing, grows at half load. */
struct u64map {
  uint64_t *keys;                     /* 0 = empty */
  uint64_t *vals;
  size_t mask;                        /* slots - 1; 0 before the first put */
  size_t used;
};

/* A provider account. */
struct capp {
  struct capp *hnext;                 /* bucket chain */
  struct capp *prev, *next;           /* every app, oldest first */
  enum sim_chan_id channel;
  char *token;                        /* these strings are "" when unset, never NULL */
  char *callback_url;
  char *secret;                       /* VK secret, WhatsApp app secret, Telegram secret_token */
  char *confirmation;
  char *verify_token;
  char *phone_number_id;
  int64_t group_id;
  int confirmed;                      /* VK: -1 not checked, else 0/1 */
  int verified;                       /* WhatsApp: likewise */
  uint64_t next_id;                   /* VK / Telegram message ids given so far */
  uint64_t next_update;               /* Telegram update ids given so far */
  struct u64map dedup[2];             /* VK: hash(peer, random_id) -> message id; [0] newest */
  struct u64map window;               /* WhatsApp: hash(recipient) -> window opened (ms) */
  uint8_t gw_key[32];                 /* Gateway: SHA-256 of the token */
};

/* A recorded request. Its fields sit one after another in blob, each
   followed by a NUL; absent ones take no room. */
enum { RF_METHOD, RF_PATH, RF_CT, RF_AUTH, RF_VTOKEN, RF_BODY, RF_FROM, RF_RCPT, RF_COUNT };
#define RF_ABSENT UINT32_MAX

struct rec {
  uint64_t seq;
  int64_t at;                         /* wall clock of receipt, ms */
  uint8_t channel;
  uint8_t outcome;
  uint32_t len[RF_COUNT];             /* RF_ABSENT when the field is absent */
  char *blob;
  size_t bytes;                       /* counted against SIM_CHAN_RING_BYTES */
};

struct ring {
  struct rec *slot;                   /* cap records */
  size_t cap, head, count;
  size_t bytes;
  uint64_t next_seq;                  /* seq of the next record; starts at 1 */
};

enum sig { SIG_NONE, SIG_VIBER, SIG_TGGW, SIG_WA };

/* A status callback to POST. url, key and body live in data. */
struct cbjob {
  int64_t due;                        /* loop time, ms */
  uint64_t order;                     /* ties on due go first in, first out */
  struct sim_chan *ch;
  uint32_t gen;                       /* sim_chan.gen when queued; stale after a reset */
  uint8_t channel;
  uint8_t sig;                        /* enum sig */
  uint8_t attempts;                   /* POSTs started */
  uint8_t max_attempts;
  size_t key_len, body_len;
  char *url, *key, *body;
  char data[];
};

enum op_kind { OP_VK_CONFIRM, OP_WA_VERIFY, OP_VIBER_WEBHOOK, OP_TG_UPDATE, OP_WA_INBOUND,
               OP_USER_MESSAGE };

/* A request answered once a webhook has answered us. */
struct op {
  struct op *prev, *next;             /* in sim_chan.ops */
  struct sim_chan *ch;
  enum op_kind kind;
  enum sim_chan_id channel;
  char *token;                        /* the app, found again when the answer comes */
  sim_chan_done_fn done;              /* NULL once answered */
  void *ctx;
  char challenge[24];                 /* OP_WA_VERIFY */
  uint64_t id;                        /* OP_TG_UPDATE: update_id */
  char msgid[64];                     /* OP_WA_INBOUND: the message's wamid;
                                         OP_USER_MESSAGE: its Viber token or VK id */
  int has_rec;                        /* OP_VIBER_WEBHOOK: the request, recorded at the end */
  struct rec rec;
};

struct sim_chan {
  uv_loop_t *loop;
  uint64_t seed;
  struct sim_rng rng;
  int closing;
  struct sim_chan_knobs knobs[SIM_CH_COUNT];
  struct chan_stats stats[SIM_CH_COUNT];
  struct capp *bucket[APP_BUCKETS];
  struct capp *apps_head, *apps_tail;
  size_t napps;
  struct ring ring;
  struct http_client *client;         /* NULL once closed */
  struct sim_post *post;              /* callbacks to http:// addresses; NULL once closed */
  uv_timer_t timer;                   /* fires the earliest callback */
  int64_t armed_at;                   /* loop time the timer fires, -1 when idle */
  struct cbjob **heap;                /* min-heap of queued callbacks */
  size_t hn, hcap;
  uint64_t next_order;
  uint64_t cb_turn;                   /* the next of several callback URLs (cb_url) */
  uint32_t gen;                       /* bumped by a reset */
  size_t inflight;                    /* callbacks being sent, all generations */
  struct op *ops;                     /* deferred answers */
  uint64_t viber_n, gw_n, wa_n, mail_n;
};

/* sim_chan.c */
json_t *chan_body_json(const struct sim_chan_req *rq);

/* sim_chan_util.c */
int64_t chan_wall_ms(void);
uint64_t chan_mix64(uint64_t z);
uint64_t chan_str_hash(const char *s);
int chan_hashed_hit(const struct sim_chan *ch, const char *what, int c, const char *addr,
                    double share);
int chan_rng_hit(struct sim_chan *ch, double share);
int64_t chan_draw_ms(struct sim_chan *ch, const int r[2]);
void jw_init(struct jw *w, size_t max);
void jw_raw(struct jw *w, const void *p, size_t n);
void jw_lit(struct jw *w, const char *s);
void jw_fmt(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jw_str(struct jw *w, const char *s, size_t n);
void jw_cstr(struct jw *w, const char *s);
enum sim_chan_handled chan_give(struct sim_chan_reply *out, unsigned status, struct jw *w);
enum sim_chan_handled chan_give_lit(struct sim_chan_reply *out, unsigned status,
                                    const char *json);
enum sim_chan_handled chan_give_json(struct sim_chan_reply *out, unsigned status, json_t *v);
enum sim_chan_handled chan_ctl_error(struct sim_chan_reply *out, unsigned status,
                                     const char *code, const char *message);
void jw_urlenc(struct jw *w, const char *s);
json_t *chan_req_params(const struct sim_chan_req *rq, const char *const *qnames);
const char *chan_pstr(const json_t *p, const char *k);
int chan_pint(const json_t *p, const char *k, int64_t *out);
const char *chan_bearer(const char *auth);
int chan_phone_digits(const char *s, char out[24]);
int chan_body_equals(const char *body, size_t len, const char *want);
void map_fini(struct u64map *m);
uint64_t *map_get(const struct u64map *m, uint64_t key);
void map_put(struct u64map *m, uint64_t key, uint64_t val);

/* sim_chan_apps.c */
struct capp *app_find(const struct sim_chan *ch, int c, const char *token);
void chan_set_str(char **field, const char *v);
struct capp *app_upsert(struct sim_chan *ch, int c, const char *token);
void apps_clear(struct sim_chan *ch);
json_t *app_json(const struct capp *a);
uint64_t dedup_get(const struct capp *a, uint64_t key);
void dedup_put(struct capp *a, uint64_t key, uint64_t id);
uint64_t chan_nonzero(uint64_t k);
void rec_fill(struct rec *r, int c, const char *const f[RF_COUNT],
              const size_t flen[RF_COUNT]);
void rec_from_req(struct rec *r, int c, const struct sim_chan_req *rq);
void ring_add(struct sim_chan *ch, struct rec *r, enum outcome o);
void ring_clear(struct ring *g);
void ring_record(struct sim_chan *ch, const struct sim_chan_req *rq, int c, enum outcome o);
void chan_record(struct sim_chan *ch, const struct sim_chan_req *rq, int c, enum outcome o);
void rec_json(struct jw *w, const struct rec *r);
json_t *chan_stats_json(const struct sim_chan *ch);
void chan_sign(enum sig s, const char *key, size_t key_len, const char *body, size_t len,
               char h1[160], char h2[160], const char **hdr, int *nh);

/* sim_chan_cb.c */
void cb_free_all(struct sim_chan *ch);
void cb_add(struct sim_chan *ch, int c, enum sig s, const void *key, size_t key_len,
            const char *url, const char *body, size_t body_len, int64_t delay);
void op_free(struct op *op);
void op_unlink(struct op *op);
enum sim_chan_handled op_start(struct sim_chan *ch, struct op *op, const char *method,
                               const char *url, const char *const *hdr, int nh,
                               const char *body, size_t len, struct sim_chan_reply *out,
                               sim_chan_done_fn done, void *ctx);
struct op *op_new(enum op_kind kind, int c, const char *token);
enum sim_chan_handled chan_finish(struct sim_chan *ch, const struct sim_chan_req *rq, int c,
                                  enum outcome o, struct sim_chan_reply *out, unsigned status,
                                  struct jw *w);
enum sim_chan_handled chan_finish_lit(struct sim_chan *ch, const struct sim_chan_req *rq, int c,
                                      enum outcome o, struct sim_chan_reply *out,
                                      unsigned status, const char *json);
int chan_draw_error(struct sim_chan *ch, int c, enum outcome *o);

/* sim_vk.c */
enum sim_chan_handled sim_vk_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                    struct sim_chan_reply *out);
/* POST /vk/inbound {"token","user_id","text"}: a person writes to the
   community; its message_new event goes to the app's callback URL. */
enum sim_chan_handled sim_vk_inbound(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out, sim_chan_done_fn done,
                                     void *ctx);

/* sim_viber.c */
enum sim_chan_handled sim_viber_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                       struct sim_chan_reply *out, sim_chan_done_fn done,
                                       void *ctx);
/* POST /viber/inbound {"token","user_id","text"}: a person writes to the
   bot; its signed "message" event goes to the app's webhook. */
enum sim_chan_handled sim_viber_inbound(struct sim_chan *ch, const struct sim_chan_req *rq,
                                        struct sim_chan_reply *out, sim_chan_done_fn done,
                                        void *ctx);

/* sim_telegram.c */
enum sim_chan_handled sim_telegram_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out);
enum sim_chan_handled sim_tggw_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                      struct sim_chan_reply *out);
enum sim_chan_handled sim_telegram_update(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out, sim_chan_done_fn done,
                                          void *ctx);

/* sim_whatsapp.c */
int sim_whatsapp_path(const char *p, char id[64]);
enum sim_chan_handled sim_whatsapp_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out, const char *pnid);
enum sim_chan_handled sim_whatsapp_inbound(struct sim_chan *ch, const struct sim_chan_req *rq,
                                           struct sim_chan_reply *out, sim_chan_done_fn done,
                                           void *ctx);

#endif
