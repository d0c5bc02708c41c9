/*
 * api_camp_csv.c - GET /v1/campaigns/{name}/recipients.csv: one row per
 * recipient (phone, name, variant, the channel that delivered, status,
 * reason, planned/created/final times, cost, clicks, message). The rows are
 * read a page at a time on a pool thread and written to a scratch file that
 * is then sent (api_csv_open), so that no answer holds a campaign in memory.
 * Cells are written as the other exports write them (api_csv_cell: a cell
 * that a spreadsheet would take for a formula is prefixed with ').
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_camp.h"
#include "api/api_int.h"
#include "api/api_optout.h"
#include "core/kk_err.h"
#include "store/store_campaign.h"

#define CSV_HEADER                                                                   \
  "phone,name,variant,channel,status,reason,planned_at,created_at,final_at,cost,clicks," \
  "message\n"

static void time_cell(FILE *f, int64_t ms) {
  char t[32] = "";
  if (ms > 0) api_time(ms, t);
  api_csv_cell(f, t, 0);
}

/* The name the recipient had in its contact when the campaign was planned. */
static void name_cell(FILE *f, const char *vars) {
  json_t *o = vars ? json_loads(vars, 0, NULL) : NULL;
  json_t *name = json_object_get(json_object_get(o, "v"), "name");
  api_csv_cell(f, json_is_string(name) ? json_string_value(name) : "", 0);
  json_decref(o);
}

/* Pool thread: one recipient. */
static int row(void *arg, const struct store_camp_export_row *x) {
  FILE *f = arg;
  const struct store_camp_rcpt *r = &x->r;
  int has_msg = x->msg_status[0] != '\0';
  int reached = has_msg && (strcmp(x->msg_status, "sent") == 0 ||
                            strcmp(x->msg_status, "delivered") == 0 ||
                            strcmp(x->msg_status, "read") == 0);
  char variant[16], cost[48], clicks[24];
  snprintf(variant, sizeof variant, "%d", r->variant);
  api_csv_cell(f, r->phone, 0);
  name_cell(f, r->vars);
  api_csv_cell(f, variant, 0);
  api_csv_cell(f, reached ? x->channel : "", 0);
  api_csv_cell(f, has_msg ? x->msg_status : r->status, 0);
  api_csv_cell(f, r->reason, 0);
  time_cell(f, r->planned_at);
  time_cell(f, has_msg ? x->created_at : 0);
  time_cell(f, has_msg && x->done ? x->updated_at : 0);
  snprintf(cost, sizeof cost, "%.10g", has_msg ? (double)x->cost / API_MONEY_SCALE : 0.0);
  api_csv_cell(f, cost, 0);
  snprintf(clicks, sizeof clicks, "%lld", (long long)x->clicks);
  api_csv_cell(f, clicks, 0);
  api_csv_cell(f, r->message, 1);
  return ferror(f) ? KK_EIO : 0;
}

/* The campaign's rows written: sent, or the error answered. */
static void on_rows(void *arg, int rc) {
  struct api_csv_out *o = arg;
  if (rc == KK_ENOENT) {
    fclose(o->f);
    api_error(o->call->req, 404, "not_found", NULL, "no such campaign");
    return;
  }
  api_csv_send(o, rc);
}

void api_camp_recipients_csv(struct api_call *call) {
  const char *name = api_param(call, "name");
  if (!api_campaign_valid(name, strlen(name))) {
    api_error(call->req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
    return;
  }
  struct api_csv_out *o = api_csv_open(call, CSV_HEADER);
  if (o == NULL) return;
  store_camp_export_async(call->a->store, call->account_id, name, row, o->f, on_rows, o);
}
