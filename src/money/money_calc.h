/*
 * money_calc.h - the cost calculator of the seeds' form: how much a month of
 * sends costs over SMS alone and over a cascade at given reach, and the
 * saving. Pure.
 *
 * Service and transactional traffic go over the cascade (a messenger first,
 * SMS for whoever it did not reach); advertising goes over SMS, as on the
 * form (all advertising: no saving). Amounts are in the currency's minor
 * unit (kopecks) as 64-bit integers; reach in per mille.
 */
#ifndef MONEY_CALC_H
#define MONEY_CALC_H

#include <stdint.h>

#define MONEY_CALC_STEPS 8

enum money_alphabet { MONEY_CYRILLIC, MONEY_LATIN };

struct money_calc_in {
  int64_t subscribers;          /* 1 .. 100,000,000 */
  int sends_per_month;          /* 1 .. 31 */
  enum money_alphabet alphabet;
  int chars;                    /* 1 .. 1530 */
  int service_pct;              /* 0 .. 100 */
  int transactional_pct;        /* 0 .. 100 - service_pct; the rest is advertising */
  int64_t sms_price;            /* per segment, service and transactional */
  int64_t sms_price_ads;        /* per segment, advertising (0: as sms_price) */
  /* the cascade before SMS: each step's price per message and reach (per
     mille of those who got that far); none: SMS only */
  int nsteps;
  int64_t step_price[MONEY_CALC_STEPS];
  int step_reach[MONEY_CALC_STEPS];
};

struct money_calc_out {
  int segments;                 /* of one message */
  int64_t messages;             /* a month */
  int64_t sms_only;             /* a month, SMS alone */
  int64_t with_cascade;         /* a month, cascade for service and transactional */
  int64_t saving;               /* sms_only - with_cascade (0 or more) */
  int64_t sms_sent;             /* messages that still go as SMS */
};

/* 0, or KK_EINVAL with *field naming the first bad input. */
int money_calc(const struct money_calc_in *in, struct money_calc_out *out, const char **field);

#endif
