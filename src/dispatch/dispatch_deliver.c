/*
 * dispatch_deliver.c - what the SMSC delivers on a route's sessions: delivery
 * receipts and mobile-originated messages, answered after their commit.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch_int.h"
#include "smpp/smpp_dlr.h"

/* A deliver_sm whose deliver_sm_resp waits for the commit of what it brought,
   so that a crash never drops a receipt or an MO the SMSC considers handed
   over. */
struct deferred_ack {
  struct dispatch *d;
  char route[64];
  uint64_t route_gen;
  uint64_t handle;
};

static void defer_ack(struct route *r, struct deferred_ack *a) {
  a->d = r->d;
  snprintf(a->route, sizeof a->route, "%s", r->cfg.smpp.name);
  a->route_gen = r->gen;
  a->handle = smpp_client_defer(r->client);
}

/* Answers the SMSC: ok once stored, a temporary error (it delivers again)
   when the store failed. A route replaced meanwhile has new sessions; the
   SMSC redelivers what the old ones did not answer. */
static void answer_ack(const struct deferred_ack *a, int rc) {
  struct route *r = route_find(a->d, a->route);
  if (r == NULL || r->gen != a->route_gen || r->client == NULL) return;
  smpp_client_deliver_resp(r->client, a->handle, rc ? SMPP_ESME_RX_T_APPN : SMPP_ESME_ROK);
}

struct receipt_ctx {
  struct deferred_ack ack;
  struct store_receipt rec;
  char route[64];
  char id0[72], id1[72];
  char error[96];
};

static void on_receipt_stored(void *arg, int rc) {
  struct receipt_ctx *c = arg;
  answer_ack(&c->ack, rc);
  struct route *r = route_find(c->ack.d, c->route);
  if (rc) kk_error(LOGCTX, "receipt not stored: %s", kk_strerror(rc));
  else if (!c->rec.matched) {
    if (r) r->n.dlr_unmatched++;
    kk_info(LOGCTX, "receipt for message id %s on route %s came before its submit_sm_resp: held",
            c->id0, c->route);
  }
  free(c);
}

static void on_mo_stored(void *arg, int rc) {
  struct deferred_ack *ack = arg;
  if (rc) kk_error(LOGCTX, "MO not stored: %s", kk_strerror(rc));
  answer_ack(ack, rc);
  free(ack);
}

void dispatch_on_deliver(void *ud, const struct smpp_pdu *pdu, uint32_t *status) {
  struct route *r = ud;
  const struct smpp_sm *sm = &pdu->body.sm;
  if (r->client == NULL) {
    /* The route is closing (kaskad stops, or its settings changed) while
       its sessions unbind: a temporary error, and the SMSC delivers it
       again on a session that stays. */
    *status = SMPP_ESME_RX_T_APPN;
    return;
  }
  if ((sm->esm_class & SMPP_ESM_TYPE_MASK) == SMPP_ESM_DLR) {
    struct smpp_dlr dlr;
    if (smpp_dlr_from_pdu(pdu, &dlr) != 0) {
      kk_warnx(LOGCTX, "route %s: unreadable delivery receipt ignored", r->cfg.smpp.name);
      return;
    }
    if (!dlr.final) return;
    struct receipt_ctx *c = kk_xcalloc(1, sizeof *c);
    snprintf(c->route, sizeof c->route, "%s", r->cfg.smpp.name);
    snprintf(c->id0, sizeof c->id0, "%.*s", (int)dlr.id.len, (const char *)dlr.id.p);
    if (smpp_msgid_alt(dlr.id, c->id1, sizeof c->id1) != 0) c->id1[0] = '\0';
    const char *state;
    if (dlr.state == SMPP_STATE_DELIVERED) {
      state = "delivered";
      r->n.dlr_delivered++;
    } else if (dlr.state == SMPP_STATE_EXPIRED) {
      state = "expired";
      r->n.dlr_expired++;
    } else {
      state = "failed";
      r->n.dlr_failed++;
    }
    if (dlr.state != SMPP_STATE_DELIVERED) {
      if (dlr.err >= 0)
        snprintf(c->error, sizeof c->error, "%s err:%03d", smpp_state_name(dlr.state), dlr.err);
      else
        snprintf(c->error, sizeof c->error, "%s", smpp_state_name(dlr.state));
    }
    c->rec.route = c->route;
    c->rec.ids[0] = c->id0;
    c->rec.ids[1] = c->id1[0] ? c->id1 : NULL;
    c->rec.state = state;
    c->rec.error = c->error[0] ? c->error : NULL;
    c->rec.at = now_ms();
    defer_ack(r, &c->ack);
    store_receipt_apply(r->d->store, &c->rec, on_receipt_stored, c);
    return;
  }
  /* A mobile-originated message. */
  char text[2048], from[32], to[32];
  const uint8_t *p = sm->short_message.p;
  size_t len = sm->short_message.len;
  if (len == 0) {
    const struct smpp_tlv *t = smpp_tlv_find(pdu, SMPP_TLV_MESSAGE_PAYLOAD);
    if (t) {
      p = t->val.p;
      len = t->val.len;
    }
  }
  if ((sm->esm_class & SMPP_ESM_UDHI) && len > 0 && (size_t)p[0] + 1 <= len) {
    size_t udhl = (size_t)p[0] + 1;
    p += udhl;
    len -= udhl;
  }
  if (sms_decode(sm->data_coding, p, len, text, sizeof text) < 0) text[sizeof text - 1] = '\0';
  snprintf(from, sizeof from, "%.*s", (int)sm->source_addr.len, (const char *)sm->source_addr.p);
  snprintf(to, sizeof to, "%.*s", (int)sm->destination_addr.len,
           (const char *)sm->destination_addr.p);
  r->n.mo++;
  kk_info(LOGCTX, "route %s: MO from %s to %s", r->cfg.smpp.name, from, to);
  struct deferred_ack *ack = kk_xcalloc(1, sizeof *ack);
  defer_ack(r, ack);
  store_mo_add(r->d->store, r->cfg.smpp.name, from, to, text, now_ms(), on_mo_stored, ack);
}
