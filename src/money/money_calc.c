/*
 * money_calc.c - the cost calculator. See money_calc.h.
 */
#include "money/money_calc.h"

#include <string.h>

#include "core/kk_err.h"

/* Segments of a text of chars characters (GSM-7 for Latin, UCS-2 for
   Cyrillic; concatenated parts carry a 6-byte header). */
static int segments_of(enum money_alphabet a, int chars) {
  int one = a == MONEY_LATIN ? 160 : 70, part = a == MONEY_LATIN ? 153 : 67;
  return chars <= one ? 1 : (chars + part - 1) / part;
}

/* Rounds num / den to the nearest integer (den > 0, num >= 0). */
static int64_t div_round(int64_t num, int64_t den) { return (num + den / 2) / den; }

int money_calc(const struct money_calc_in *in, struct money_calc_out *out, const char **field) {
  memset(out, 0, sizeof *out);
  const char *bad = NULL;
  if (in->subscribers < 1 || in->subscribers > 100000000) bad = "subscribers";
  else if (in->sends_per_month < 1 || in->sends_per_month > 31) bad = "sends_per_month";
  else if (in->chars < 1 || in->chars > 1530) bad = "chars";
  else if (in->alphabet != MONEY_CYRILLIC && in->alphabet != MONEY_LATIN) bad = "alphabet";
  else if (in->service_pct < 0 || in->service_pct > 100) bad = "service_share";
  else if (in->transactional_pct < 0 || in->service_pct + in->transactional_pct > 100)
    bad = "transactional_share";
  else if (in->sms_price < 0 || in->sms_price_ads < 0) bad = "price";
  else if (in->nsteps < 0 || in->nsteps > MONEY_CALC_STEPS) bad = "cascade";
  for (int i = 0; !bad && i < in->nsteps; i++)
    if (in->step_price[i] < 0 || in->step_reach[i] < 0 || in->step_reach[i] > 1000) bad = "cascade";
  if (bad) {
    if (field) *field = bad;
    return KK_EINVAL;
  }
  out->segments = segments_of(in->alphabet, in->chars);
  out->messages = in->subscribers * in->sends_per_month;
  int64_t sms = in->sms_price * out->segments;
  int64_t sms_ads = (in->sms_price_ads ? in->sms_price_ads : in->sms_price) * out->segments;
  int64_t cascaded = out->messages * (in->service_pct + in->transactional_pct) / 100;
  int64_t ads = out->messages - cascaded;
  out->sms_only = cascaded * sms + ads * sms_ads;
  /* Over the cascade, in millionths of a message so that reach multiplies
     exactly: who is left after each step, what each step costs them. */
  int64_t left = 1000000, per_msg_micro = 0;
  for (int i = 0; i < in->nsteps; i++) {
    per_msg_micro += left * in->step_price[i];
    left = left * (1000 - in->step_reach[i]) / 1000;
  }
  per_msg_micro += left * sms;
  out->with_cascade = div_round(cascaded * per_msg_micro, 1000000) + ads * sms_ads;
  out->sms_sent = div_round(cascaded * left, 1000000) + ads;
  out->saving = out->sms_only > out->with_cascade ? out->sms_only - out->with_cascade : 0;
  return 0;
}
