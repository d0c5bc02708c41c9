/*
 * kk_status.h - the statuses of messages and attempts, and the channels,
 * each generated from one list (like KK_ERRNO_MAP in kk_err.h).
 *
 * The names are what the store keeps and the API shows; the enums are what
 * the code compares and indexes by. A status's rank is what it tells of the
 * person being reached: 3 read, 2 delivered, 1 sent, 0 nothing (yet). The
 * best status of a message is the one of highest rank.
 */
#ifndef KK_STATUS_H
#define KK_STATUS_H

/* id, name, rank */
#define KK_STATUS_LIST(XX)                                \
  XX(ACCEPTED, "accepted", 0)                             \
  XX(SCHEDULED, "scheduled", 0)                           \
  XX(SENDING, "sending", 0)                               \
  XX(SENT, "sent", 1)                                     \
  XX(DELIVERED, "delivered", 2)                           \
  XX(READ, "read", 3)                                     \
  XX(FAILED, "failed", 0)                                 \
  XX(EXPIRED, "expired", 0)                               \
  XX(REJECTED, "rejected", 0)                             \
  XX(CANCELLED, "cancelled", 0)                           \
  /* attempts only */                                     \
  XX(SKIPPED, "skipped", 0)                               \
  XX(TIMEOUT, "timeout", 0)

enum kk_status {
  KK_ST_NONE = -1,          /* not a status kaskad knows */
#define XX(id, name, rank) KK_ST_##id,
  KK_STATUS_LIST(XX)
#undef XX
  KK_ST_COUNT
};

/* The stored name of st ("" for KK_ST_NONE or out of range). */
const char *kk_status_name(enum kk_status st);
/* The status called name, or KK_ST_NONE (also for NULL). */
enum kk_status kk_status_parse(const char *name);
/* What st tells of the person being reached: 3 read, 2 delivered, 1 sent, 0. */
int kk_status_rank(enum kk_status st);
/* The status of a rank 1..3 (sent, delivered, read); KK_ST_NONE for others. */
enum kk_status kk_status_of_rank(int rank);

/*
 * The channels a cascade step can use, in the drivers' display order:
 * id, name, the address field a message must carry for it (NULL: the
 * phone), and whether the phone stands in when that field is missing.
 * Counters are indexed by the channel, so a new channel is one more line
 * here (and its driver in channel/).
 */
#define KK_CHAN_LIST(XX)                                  \
  XX(VK, "vk", "vk_id", 0)                                \
  XX(VIBER, "viber", "viber_id", 1)                       \
  XX(TELEGRAM, "telegram", "telegram_chat_id", 0)         \
  XX(TELEGRAM_GATEWAY, "telegram_gateway", NULL, 0)       \
  XX(WHATSAPP, "whatsapp", NULL, 0)                       \
  XX(EMAIL, "email", "email", 0)                          \
  XX(SMS, "sms", NULL, 0)

enum kk_chan {
  KK_CHAN_NONE = -1,        /* no channel (yet), or one kaskad does not know */
#define XX(id, name, field, fallback) KK_CHAN_##id,
  KK_CHAN_LIST(XX)
#undef XX
  KK_CHAN_COUNT
};

/* The name of ch ("" for KK_CHAN_NONE or out of range). */
const char *kk_chan_name(enum kk_chan ch);
/* The channel called name, or KK_CHAN_NONE (also for NULL and ""). */
enum kk_chan kk_chan_parse(const char *name);
/* The address field ch needs (NULL: the phone). */
const char *kk_chan_address_field(enum kk_chan ch);
/* 1 when ch falls back to the phone without its address field. */
int kk_chan_phone_fallback(enum kk_chan ch);

#endif
