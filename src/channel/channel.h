/*
 * channel.h - the channel drivers: one small interface, one file per
 * provider (chan_vk.c, chan_viber.c, chan_telegram.c, chan_tggw.c,
 * chan_whatsapp.c, chan_email.c, chan_sms.c).
 *
 * A driver does no I/O. It declares its settings (fields), turns one
 * attempt into the exact request its provider expects (build), classifies
 * the provider's answer (parse_reply), and verifies and reads the
 * provider's inbound status callbacks (hook). The channel engine
 * (chan_engine.h) sends the requests with libcurl on the loop, and the
 * cascade applies the statuses; that keeps every driver testable byte for
 * byte and fuzzable on its own. SMS makes no request of its own: its driver
 * says so (external), and the engine hands its steps to the sender it was
 * given for the channel (dispatch/, which submits them over SMPP).
 *
 * Addresses: a phone is E.164 digits without '+' ("79161234567"). Channels
 * that address by phone (sms, whatsapp, telegram_gateway, viber without a
 * viber_id) use it; the others need their own id (vk_id, telegram_chat_id,
 * email; viber_id for the Viber bot).
 */
#ifndef CHANNEL_H
#define CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/kk_status.h"

/* What a channel can ever report for a message (bits). */
#define CHAN_SENT 1u
#define CHAN_DELIVERED 2u
#define CHAN_READ 4u

/* WhatsApp's customer-service window: after a person's last message the
   business may answer with free-form messages for this long; otherwise only
   with an approved template. */
#define CHAN_WA_WINDOW_MS (24LL * 3600 * 1000)

/*
 * A channel's effective settings for one send: the account's own, else the
 * operator's defaults (PUT /v1/channels/{channel}). Every string is
 * NUL-terminated, "" when unset.
 */
struct chan_cfg {
  char base_url[256];        /* scheme://host[:port], no trailing '/'; "" = the real provider */
  char token[512];           /* API / access / bot token; SMTP password for e-mail */
  char secret[256];          /* webhook secret: VK secret key, WhatsApp app secret,
                                Telegram secret_token (Viber signs with the token) */
  char sender[64];           /* sender name where the channel has one */
  int64_t group_id;          /* VK community id */
  char confirmation[128];    /* VK confirmation string */
  char phone_number_id[64];  /* WhatsApp */
  char verify_token[128];    /* WhatsApp webhook verify token */
  char api_version[16];      /* WhatsApp graph version, e.g. "v21.0" ("" = v21.0) */
  char smtp_url[256];        /* e-mail: smtp://host:port or smtps://host:port */
  char from[256];            /* e-mail From address */
};

/* One attempt to send. Strings are borrowed; NULL or "" when absent. */
struct chan_msg {
  int64_t attempt_id;        /* unique; VK random_id and idempotency derive from it */
  const char *public_id;     /* the message's id ("msg_..."), for tracking fields */
  const char *to;            /* phone, E.164 digits without '+' */
  const char *address;       /* vk_id / telegram_chat_id / viber_id / email */
  const char *text;          /* UTF-8 */
  const char *subject;       /* e-mail subject ("" = derived from the text) */
  const char *image;         /* image URL */
  const char *button_caption;
  const char *button_url;
  const char *wa_template;   /* JSON {"name","language","params":[...]} or NULL */
  int wa_window;             /* WhatsApp: 1 when the recipient wrote within
                                CHAN_WA_WINDOW_MS (free-form text allowed) */
  const char *code;          /* telegram_gateway: 4-8 digits; NULL = first 4-8 digit
                                run of text */
  const char *msg_class;     /* service | transactional | advertising */
  int ttl_s;                 /* validity in seconds (0 = provider default) */
  const char *callback_url;  /* where this provider's callbacks for this send go
                                (telegram_gateway puts it in the request) */
};

/*
 * An outbound request. build() fills it; every pointer is owned by the
 * request and freed by chan_req_free(). For e-mail, url is the SMTP URL,
 * mail_from/mail_rcpt are set, body is the RFC 5322 message.
 */
#define CHAN_MAX_HEADERS 8
struct chan_req {
  char method[8];            /* "POST" or "GET" */
  char *url;                 /* full URL with query */
  char *headers[CHAN_MAX_HEADERS];  /* "Name: value" */
  int nheaders;
  char *body;                /* may be NULL for GET */
  size_t body_len;
  char *mail_from;           /* e-mail only */
  char *mail_rcpt;           /* e-mail only */
  char *username;            /* e-mail only, may be NULL */
  char *password;            /* e-mail only, may be NULL */
};
void chan_req_free(struct chan_req *r);
/* Adds a header "name: value" (copied). Returns 0 or KK_ENOSPC. */
int chan_req_header(struct chan_req *r, const char *name, const char *value);

/* How a send ended, from the provider's answer. */
enum chan_outcome {
  CHAN_OK = 0,               /* accepted: provider_id is set; the attempt is "sent" */
  CHAN_RETRY,                /* temporary (429, 5xx, flood control, timeouts): try again
                                after retry_after_ms (0 = the engine's backoff) */
  CHAN_FAIL,                 /* permanent for this contact (blocked the bot, no such user,
                                no permission, not registered): the step fails at once */
  CHAN_CONFIG,               /* the account's settings are wrong (bad token, unknown
                                sender): the step fails; logged as a settings error */
};

struct chan_result {
  enum chan_outcome outcome;
  char provider_id[72];      /* CHAN_OK: the provider's message id as text */
  long retry_after_ms;       /* CHAN_RETRY: the provider's hint, 0 if none */
  char error[160];           /* otherwise: "<provider code> <kaskad's words> (HTTP <status>)";
                                shown to the account, so never the provider's own text */
  char detail[160];          /* the provider's own description (printable ASCII), for
                                the operator's log only */
};

/*
 * An inbound callback, as kaskad's HTTP server received it. header() and
 * query() return a value or NULL (names are case-insensitive for headers).
 */
struct chan_hook_in {
  const char *method;        /* "POST" or "GET" */
  const char *body;          /* raw bytes, NUL-terminated (may contain NULs before len) */
  size_t len;
  const char *(*header)(void *ctx, const char *name);
  const char *(*query)(void *ctx, const char *name);
  void *ctx;
  int64_t now_ms;            /* for stale-timestamp checks */
};

/* One status a callback reports. */
struct chan_status {
  char provider_id[72];      /* the message it is about ("" for a VK read, see peer) */
  char status[12];           /* sent | delivered | read | failed | expired */
  int64_t at;                /* ms since the epoch (the provider's time, else now) */
  char error[128];           /* failed: "<code> <text>" */
  /* VK read: every message of ours to this peer with id <= read_upto is read. */
  char peer[32];
  int64_t read_upto;
};

/* A message a person sent (WhatsApp: it opens the customer-service window). */
struct chan_inbound {
  char from[24];             /* phone, E.164 digits without '+'; "" when the
                                channel names the person by its own id */
  char user[72];             /* VK, Viber, Telegram: the person's id there (the
                                contact's vk_id, viber_id, telegram_chat_id) */
  int64_t at;                /* ms since the epoch (the provider's time, at most now) */
  char text[1024];           /* what it says (cut at a character), or "[type]" */
};

#define CHAN_HOOK_MAX_STATUS 32
#define CHAN_HOOK_MAX_INBOUND 32
struct chan_hook_out {
  int http_status;           /* 200 when verified; 401/403 forged; 400 malformed */
  char reply[256];           /* body to answer with ("ok", the VK confirmation string,
                                the WhatsApp hub.challenge, "" for empty) */
  char reason[128];          /* why it was refused, for the log (no secrets) */
  int nstatus;
  struct chan_status st[CHAN_HOOK_MAX_STATUS];
  int ninbound;
  struct chan_inbound in[CHAN_HOOK_MAX_INBOUND];
};

#define CHAN_BATCH_MAX 25          /* sends one request may carry */

/* How a setting is checked beyond its type (chan_field.flags). */
#define CHAN_FIELD_INT 1u          /* a positive integer (int64_t), not a string */
#define CHAN_FIELD_SECRET 2u       /* masked when shown */
#define CHAN_FIELD_REQUIRED 4u     /* the channel cannot send without it */
#define CHAN_FIELD_HTTP_BASE 8u    /* http(s)://host[:port], a trailing '/' dropped */
#define CHAN_FIELD_SMTP_URL 16u    /* smtp://host:port or smtps://host:port */
#define CHAN_FIELD_TOKEN_CHARS 32u /* A-Z, a-z, 0-9, _ and - only (rule says which) */

/* One setting a driver takes (PUT /v1/channels/{channel}): a member of
   struct chan_cfg. The settings parser (chan_settings.h) walks the
   driver's table; a field no table of the channel names is refused. */
struct chan_field {
  const char *name;          /* the JSON name, the same as the chan_cfg member */
  size_t off, cap;           /* where it is in chan_cfg; cap of a string */
  unsigned flags;            /* CHAN_FIELD_* */
  const char *rule;          /* CHAN_FIELD_TOKEN_CHARS: the error text when it fails */
};

/* Where sends go for a channel the engine makes no request for (SMS:
   dispatch/ submits them over SMPP). Given to the engine per channel
   (chan_engine_sender). */
struct store_due;
struct chan_sender {
  /* A new message's first step is on this channel: row (the store's, alive
     during the call; the sender may take row->text) is what to send. */
  void (*submit_new)(void *ud, struct store_due *row);
  /* The message's step on this channel became current later in its
     cascade: row (the store's note's, alive during the call; the sender may
     take row->text) is what to send. */
  void (*submit)(void *ud, struct store_due *row);
  /* The step timed out: what is not yet submitted is dropped. */
  void (*cancel)(void *ud, int64_t attempt_id);
  void *ud;
};

struct chan_driver {
  const char *name;          /* "vk", "viber", "telegram", "telegram_gateway",
                                "whatsapp", "email", "sms" */
  unsigned reports;          /* CHAN_SENT | CHAN_DELIVERED | CHAN_READ */
  const char *address_field; /* "vk_id", "telegram_chat_id", "email", NULL: phone.
                                viber: "viber_id", used when present, else the phone */
  int phone_fallback;        /* 1: without its address field the phone is used */
  int resend_safe;           /* 1: the provider drops a repeated send (VK's random_id),
                                so a request a crash interrupted may go again */
  const struct chan_field *fields;   /* the settings it takes */
  int nfields;
  int external;              /* 1: sent by the chan_sender given for the channel
                                (SMS), not by build() and an HTTP request */
  /* Builds the request for m. Returns 0, KK_EINVAL when the message cannot go
     on this channel (no code for telegram_gateway, WhatsApp's window closed
     and no template ...; error names why), or KK_ENOENT when a needed
     setting is missing. */
  int (*build)(const struct chan_cfg *cfg, const struct chan_msg *m, struct chan_req *req,
               char *error, size_t errcap);
  /* Classifies the provider's answer to build()'s request. http_status is the
     HTTP status (the SMTP reply code for e-mail, 0 when the transfer failed);
     retry_after is the Retry-After header or NULL. */
  void (*parse_reply)(long http_status, const char *body, size_t len, const char *retry_after,
                      struct chan_result *res);
  /* Verifies and reads one inbound callback. Never applies anything itself.
     Returns 0 when verified (out->st holds 0..n statuses, out->in 0..n
     messages people sent), KK_EAUTH when the signature or secret is wrong
     (http_status 401 or 403), KK_EPROTO when it is malformed (400). */
  int (*hook)(const struct chan_cfg *cfg, const struct chan_hook_in *in, struct chan_hook_out *out);
  /* Where the provider takes several sends in one request (VK's execute):
     at most batch_max of them. batch() merges n requests that build() made
     with the same settings into *out (reqs are left as they are); KK_ENOSPC
     when they do not fit in one, and then they go one by one.
     parse_batch_reply() gives the result of each, in order, in res[0..n). */
  int batch_max;             /* at most CHAN_BATCH_MAX */
  int (*batch)(const struct chan_cfg *cfg, const struct chan_req *const *reqs, int n,
               struct chan_req *out);
  void (*parse_batch_reply)(long http_status, const char *body, size_t len,
                            const char *retry_after, struct chan_result *res, int n);
  /* Where the provider has an API for it (Telegram setWebhook, Viber
     set_webhook): the request that registers webhook_url. NULL otherwise. */
  int (*build_register)(const struct chan_cfg *cfg, const char *webhook_url, struct chan_req *req);
  /* Checks the settings that go into a URL's path or a header as they are
     (Telegram's bot token in the path, WhatsApp's phone_number_id ...)
     against the provider's character set, so that nothing like "../" or a
     line break reaches a request. 0, or KK_EINVAL with error
     "invalid_<setting>: <why>". build() and build_register() check too.
     NULL when the channel has nothing to check. */
  int (*check)(const struct chan_cfg *cfg, char *error, size_t errcap);
};

/* The driver of a channel name, or NULL. */
const struct chan_driver *chan_driver(const char *name);
/* Its place in chan_drivers() (what per-channel tables are indexed by), or
   KK_ENOENT for an unknown name. */
int chan_driver_index(const char *name);
/* The same by channel: chan_drivers() is in the order of enum kk_chan
   (core/kk_status.h), so its place is ch (NULL, KK_ENOENT: none). */
const struct chan_driver *chan_driver_of(enum kk_chan ch);
int chan_driver_index_of(enum kk_chan ch);
#define CHAN_MAX_DRIVERS 16        /* more than chan_drivers() counts (one spare) */
/* Every driver, in cascade display order; *n receives the count. */
const struct chan_driver *const *chan_drivers(int *n);

/* "vk reports sent and read" style text of what a channel can report. */
const char *chan_reports_text(unsigned reports, char *out, size_t cap);

#endif
