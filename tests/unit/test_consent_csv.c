/* test_consent_csv.c - consents from CSV: the columns mapped to a record,
   defaults (channel all, at now), and each reason a row is refused for. */
#include <stdio.h>
#include <string.h>

#include "contact/consent_csv.h"
#include "core/kk_err.h"
#include "kk_test.h"

#define NOW 1800000000000LL

struct seen {
  char out[4096];
};

static void on_row(void *arg, long line, const struct store_consent *r) {
  struct seen *s = arg;
  size_t n = strlen(s->out);
  snprintf(s->out + n, sizeof s->out - n, "%ld:%s %s %s %s %s %lld\n", line, r->phone, r->channel,
           r->source, r->text ? r->text : "-", r->ip[0] ? r->ip : "-",
           (long long)(r->at == NOW ? 0 : r->at));
}

static void on_reject(void *arg, const struct consent_csv_reject *r) {
  struct seen *s = arg;
  size_t n = strlen(s->out);
  snprintf(s->out + n, sizeof s->out - n, "%ld!%s\n", r->line, r->reason);
}

static int read_csv(const char *text, struct seen *s) {
  memset(s, 0, sizeof *s);
  struct consent_csv_opts o = {.country = "RU", .now = NOW, .row = on_row, .reject = on_reject,
                               .arg = s};
  struct consent_csv *c = consent_csv_new(&o);
  int rc = consent_csv_feed(c, text, strlen(text));
  if (rc == 0) rc = consent_csv_end(c);
  consent_csv_free(c);
  return rc;
}

KK_TEST(consent_csv_rows_and_reasons) {
  struct seen s;
  ASSERT_EQ(read_csv("Phone,Source,Text,IP,At,Channel,extra\n"
                     "8 (916) 123-40-01,site-form,Согласен,203.0.113.7,2026-11-01T10:00:00Z,,x\n"
                     "+7 916 123 40 02,shop,,,,sms,\n"
                     "79161234003,,,,,,\n"
                     "12345,site,,,,,\n"
                     "79161234005,site,,,2099-01-01,,\n"
                     "79161234006,site,,,,fax,\n"
                     "79161234007,site,,,yesterday,,\n",
                     &s),
            0);
  ASSERT_STR_EQ(s.out,
                "2:79161234001 all site-form Согласен 203.0.113.7 1793527200000\n"
                "3:79161234002 sms shop - - 0\n"
                "4!missing_source\n"
                "5!invalid_phone\n"
                "6!invalid_at\n"
                "7!invalid_channel\n"
                "8!invalid_at\n");
  ASSERT_EQ(read_csv("source,text\nsite,x\n", &s), KK_EINVAL);
}
