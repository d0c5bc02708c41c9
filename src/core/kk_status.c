/*
 * kk_status.c - names, ranks and channels from the lists in kk_status.h.
 */
#include "core/kk_status.h"

#include <string.h>

static const struct {
  const char *name;
  int rank;
} statuses[KK_ST_COUNT] = {
#define XX(id, name, rank) {name, rank},
    KK_STATUS_LIST(XX)
#undef XX
};

const char *kk_status_name(enum kk_status st) {
  return st >= 0 && st < KK_ST_COUNT ? statuses[st].name : "";
}

enum kk_status kk_status_parse(const char *name) {
  if (name == NULL) return KK_ST_NONE;
  for (int i = 0; i < KK_ST_COUNT; i++)
    if (strcmp(statuses[i].name, name) == 0) return (enum kk_status)i;
  return KK_ST_NONE;
}

int kk_status_rank(enum kk_status st) {
  return st >= 0 && st < KK_ST_COUNT ? statuses[st].rank : 0;
}

enum kk_status kk_status_of_rank(int rank) {
  switch (rank) {
  case 1: return KK_ST_SENT;
  case 2: return KK_ST_DELIVERED;
  case 3: return KK_ST_READ;
  default: return KK_ST_NONE;
  }
}

static const struct {
  const char *name, *field;
  int fallback;
} chans[KK_CHAN_COUNT] = {
#define XX(id, name, field, fallback) {name, field, fallback},
    KK_CHAN_LIST(XX)
#undef XX
};

const char *kk_chan_name(enum kk_chan ch) {
  return ch >= 0 && ch < KK_CHAN_COUNT ? chans[ch].name : "";
}

enum kk_chan kk_chan_parse(const char *name) {
  if (name == NULL || name[0] == '\0') return KK_CHAN_NONE;
  for (int i = 0; i < KK_CHAN_COUNT; i++)
    if (strcmp(chans[i].name, name) == 0) return (enum kk_chan)i;
  return KK_CHAN_NONE;
}

const char *kk_chan_address_field(enum kk_chan ch) {
  return ch >= 0 && ch < KK_CHAN_COUNT ? chans[ch].field : NULL;
}

int kk_chan_phone_fallback(enum kk_chan ch) {
  return ch >= 0 && ch < KK_CHAN_COUNT ? chans[ch].fallback : 0;
}
