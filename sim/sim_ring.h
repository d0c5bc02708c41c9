/*
 * sim_ring.h - the last N submit_sm PDUs the SMSC received, for tests to
 * inspect through GET /submits.
 *
 * Records hold raw bytes; hex and decoded text are produced only when a
 * query asks, so recording costs one copy per submit.
 */
#ifndef SIM_RING_H
#define SIM_RING_H

#include <stddef.h>
#include <stdint.h>

#include "core/kk_buf.h"

#define SIM_RING_CAP 100000
#define SIM_SM_MAX 254            /* short_message octets kept per record */

struct sim_submit {
  int64_t time_ms;                /* wall clock, ms since the epoch */
  uint32_t seq;                   /* sequence_number of the submit_sm */
  uint32_t status;                /* command_status answered (0 = accepted) */
  uint8_t src_ton, src_npi, dst_ton, dst_npi;
  uint8_t esm_class;
  uint8_t data_coding;
  uint8_t registered_delivery;
  uint8_t outcome;                /* enum smpp_msg_state drawn; 0 when refused */
  uint8_t dropped;                /* 1: never answered (injected disconnect) */
  uint8_t payload;                /* 1: text came in the message_payload TLV */
  uint8_t truncated;              /* 1: more than SIM_SM_MAX octets arrived */
  uint8_t sm_len;                 /* octets in sm */
  char system_id[16];
  char source_addr[21];
  char dest_addr[21];
  char validity_period[17];
  char message_id[24];            /* empty when refused */
  uint8_t sm[SIM_SM_MAX];         /* short_message as received, UDH included */
};

struct sim_ring {
  struct sim_submit *slot;        /* cap records, allocated by sim_ring_init */
  size_t cap;
  size_t next;                    /* index the next record goes to */
  size_t count;                   /* records held, <= cap */
};

/* Allocates room for cap records; sim_ring_fini frees it. */
void sim_ring_init(struct sim_ring *r, size_t cap);
void sim_ring_fini(struct sim_ring *r);
void sim_ring_clear(struct sim_ring *r);

/* Returns the record to fill in, overwriting the oldest when full. */
struct sim_submit *sim_ring_push(struct sim_ring *r);

struct sim_ring_filter {
  const char *dest;               /* exact destination_addr, or NULL */
  const char *system_id;          /* exact system_id, or NULL */
  int64_t since_ms;               /* records with time_ms >= since_ms */
  size_t limit;                   /* newest this many matches */
};

/*
 * Appends to out a JSON array of the newest matching records, oldest first.
 * Returns 0 or KK_ENOSPC when out's cap is reached (out then holds a
 * partial array).
 */
int sim_ring_query(const struct sim_ring *r, const struct sim_ring_filter *f,
                   struct kk_buf *out);

#endif
