/*
 * fuzz_json.c - the send request parser and accept/'s preparation of what
 * it parsed (accept_prepare): any body either becomes a valid
 * message (normalised number, known encoding, 1..16 segments, expiry after
 * creation, no campaign or a valid campaign name) or a refusal with a 4xx
 * status and an error code.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "api/api_int.h"
#include "sms/sms_enc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const long long ttl[3] = {86400000, 3600000, 86400000};
  static struct accept ac;
  if (ac.ttl_ms[0] == 0) accept_init(&ac, NULL, NULL, NULL, ttl);
  json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  if (doc == NULL) return 0;
  struct api_msg_item p;
  struct accept_item it;
  memset(&p, 0, sizeof p);
  int rc = api_msg_parse(doc, NULL, &p, &it);
  if (rc == 0) {
    /* What accept/ makes of it without the store: the message to store,
       or a refusal. */
    rc = accept_prepare(&ac, 1, "", 1700000000000LL, &it);
    if (rc != 0 && (it.err.code == NULL || it.err.status < 400 || it.err.status > 499))
      __builtin_trap();
  } else if (p.err.code == NULL || p.err.status < 400 || p.err.status > 499) {
    __builtin_trap();
  }
  if (rc == 0) {
    size_t n = strlen(it.m.to);
    if ((n < 8 && !(n == 0 && it.extra)) || n > 15) __builtin_trap();
    for (size_t i = 0; i < n; i++)
      if (it.m.to[i] < '0' || it.m.to[i] > '9') __builtin_trap();
    if (it.m.segments < 1 || it.m.segments > SMS_MAX_PARTS) __builtin_trap();
    if (strcmp(it.m.encoding, "gsm7") != 0 && strcmp(it.m.encoding, "ucs2") != 0) __builtin_trap();
    if (it.m.expires_at <= it.m.created_at) __builtin_trap();
    if (strncmp(it.m.public_id, "msg_", 4) != 0) __builtin_trap();
    if (it.m.campaign && !api_campaign_valid(it.m.campaign, strlen(it.m.campaign)))
      __builtin_trap();
  }
  api_msg_item_fini(&p);
  json_decref(doc);
  return 0;
}
