/*
 * sim_smsc.c - what the simulated SMSC does with each PDU it receives:
 * binds (with optional accounts), submits (forced or injected errors, the
 * rate limit, drawn outcomes, the record in the ring), enquire_link and
 * unbind; plus its start, shutdown and counters (see sim_smsc.h).
 *
 * A submit is answered at once, or after resp_delay_ms through the job
 * wheel; what follows it (the receipt) is sim_deliver.c's business.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "sim_smsc_int.h"
#include "smpp/smpp_dlr.h"
#include "sms/sms_enc.h"

/* ---- small helpers ---- */

int64_t sim_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies a view into a C string of cap bytes, truncating. */
static void copy_str(char *dst, size_t cap, struct smpp_str v) {
  size_t n = v.len < cap - 1 ? v.len : cap - 1;
  if (n) memcpy(dst, v.p, n);
  dst[n] = '\0';
}

void sim_printable(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++)
    dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
  dst[i] = '\0';
}

static int ends_with(struct smpp_str v, const char *suffix) {
  size_t n = strlen(suffix);
  return v.len >= n && memcmp(v.p + v.len - n, suffix, n) == 0;
}

void sim_format_id(uint64_t v, int fmt, char *out) {
  char tmp[24];
  int n = 0;
  do {
    if (fmt == SIM_MSGID_HEX) {
      tmp[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } else {
      tmp[n++] = (char)('0' + v % 10);
      v /= 10;
    }
  } while (v);
  for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
}

/* ---- answers ---- */

/* Sends a PDU that has only a header: enquire_link_resp, unbind_resp, generic_nack. */
static void answer(struct sim_sess *s, uint32_t cmd, uint32_t seq, uint32_t status) {
  struct smpp_pdu r;
  memset(&r, 0, sizeof r);
  r.command_id = cmd;
  r.command_status = status;
  r.sequence_number = seq;
  sim_sess_send(s, &r);
}

void sim_answer_submit(struct sim_sess *s, uint32_t seq, uint32_t status,
                       const char *message_id) {
  struct smpp_pdu r;
  memset(&r, 0, sizeof r);
  r.command_id = SMPP_SUBMIT_SM_RESP;
  r.command_status = status;
  r.sequence_number = seq;
  if (status == SMPP_ESME_ROK) r.body.message_id = smpp_cstr(message_id);
  sim_sess_send(s, &r);
}

/* ---- binds ---- */

static uint32_t check_account(const struct sim_smsc *m, const struct smpp_bind *b) {
  char id[16], pw[9];
  copy_str(id, sizeof id, b->system_id);
  copy_str(pw, sizeof pw, b->password);
  for (size_t i = 0; i < m->naccounts; i++) {
    if (strcmp(m->acc_id[i], id) == 0)
      return strcmp(m->acc_pw[i], pw) == 0 ? SMPP_ESME_ROK : SMPP_ESME_RINVPASWD;
  }
  return SMPP_ESME_RINVSYSID;
}

/* Returns the rate counters of a system_id, or NULL when the table is full.
   Entries are allocated here and freed by sim_smsc_free. */
static struct sim_account *account_for(struct sim_smsc *m, const char *system_id) {
  for (size_t i = 0; i < m->nacct; i++)
    if (strcmp(m->acct[i]->system_id, system_id) == 0) return m->acct[i];
  if (m->nacct == SIM_MAX_ACCOUNTS) return NULL;
  struct sim_account *a = kk_xcalloc(1, sizeof *a);
  memcpy(a->system_id, system_id, sizeof a->system_id);
  m->acct[m->nacct++] = a;
  return a;
}

static void on_bind(struct sim_smsc *m, struct sim_sess *s, const struct smpp_pdu *p) {
  char id[16], shown[16];
  copy_str(id, sizeof id, p->body.bind.system_id);
  sim_printable(shown, sizeof shown, id);
  uint32_t status = SMPP_ESME_ROK;
  if (s->bind != SIM_UNBOUND)
    status = SMPP_ESME_RALYBND;
  else if (m->naccounts)
    status = check_account(m, &p->body.bind);

  struct smpp_pdu r;
  memset(&r, 0, sizeof r);
  r.command_id = p->command_id | SMPP_RESP;
  r.command_status = status;
  r.sequence_number = p->sequence_number;
  r.body.system_id = smpp_cstr("kaskad-sim");
  uint8_t version = 0x34;
  smpp_tlv_add(&r, SMPP_TLV_SC_INTERFACE_VERSION, &version, 1);

  const char *as = p->command_id == SMPP_BIND_TRANSCEIVER ? "transceiver"
                   : p->command_id == SMPP_BIND_RECEIVER  ? "receiver"
                                                          : "transmitter";
  if (status != SMPP_ESME_ROK) {
    m->stats.bind_failures++;
    kk_warnx(s->ctx, "bind as %s \"%s\" refused: %s", as, shown, smpp_status_name(status));
    sim_sess_send(s, &r);
    return;
  }
  s->bind = p->command_id == SMPP_BIND_TRANSCEIVER ? SIM_BOUND_TRX
            : p->command_id == SMPP_BIND_RECEIVER  ? SIM_BOUND_RX
                                                   : SIM_BOUND_TX;
  memcpy(s->system_id, id, sizeof s->system_id);
  s->acct = account_for(m, id);
  size_t n = strlen(s->ctx);
  if (n > 0 && s->ctx[n - 1] == ']')
    snprintf(s->ctx + n - 1, sizeof s->ctx - (n - 1), " esme=%s]", shown);
  m->stats.binds++;
  kk_info(s->ctx, "bound as %s", as);
  sim_sess_send(s, &r);
}

/* ---- submits ---- */

/* Copies what the ring keeps of a submit_sm. */
static void record(struct sim_submit *r, const struct sim_sess *s,
                   const struct smpp_pdu *p, int64_t now) {
  const struct smpp_sm *sm = &p->body.sm;
  r->time_ms = now;
  r->seq = p->sequence_number;
  r->status = SMPP_ESME_ROK;
  r->src_ton = sm->source_addr_ton;
  r->src_npi = sm->source_addr_npi;
  r->dst_ton = sm->dest_addr_ton;
  r->dst_npi = sm->dest_addr_npi;
  r->esm_class = sm->esm_class;
  r->data_coding = sm->data_coding;
  r->registered_delivery = sm->registered_delivery;
  r->outcome = 0;
  r->dropped = 0;
  r->payload = 0;
  r->truncated = 0;
  memcpy(r->system_id, s->system_id, sizeof r->system_id);
  copy_str(r->source_addr, sizeof r->source_addr, sm->source_addr);
  copy_str(r->dest_addr, sizeof r->dest_addr, sm->destination_addr);
  copy_str(r->validity_period, sizeof r->validity_period, sm->validity_period);
  r->message_id[0] = '\0';
  struct smpp_str text = sm->short_message;
  if (text.len == 0) {
    const struct smpp_tlv *t = smpp_tlv_find(p, SMPP_TLV_MESSAGE_PAYLOAD);
    if (t != NULL && t->val.len > 0) {
      text = t->val;
      r->payload = 1;
    }
  }
  size_t n = text.len;
  if (n > SIM_SM_MAX) {
    n = SIM_SM_MAX;
    r->truncated = 1;
  }
  if (n) memcpy(r->sm, text.p, n);
  r->sm_len = (uint8_t)n;
}

/* Decides the command_status of a submit: forced by the destination, drawn
   from the error shares, or the per-system_id rate limit. */
static uint32_t pick_status(struct sim_smsc *m, struct sim_sess *s,
                            const struct smpp_sm *sm, int64_t now) {
  const struct sim_knobs *k = m->knobs;
  if (ends_with(sm->destination_addr, "0001")) return SMPP_ESME_RINVDSTADR;
  double r = sim_rng_01(&m->rng);
  double edge = k->throttle;
  if (r < edge) return SMPP_ESME_RTHROTTLED;
  edge += k->queue_full;
  if (r < edge) return SMPP_ESME_RMSGQFUL;
  edge += k->syserr;
  if (r < edge) return SMPP_ESME_RSYSERR;
  edge += k->reject;
  if (r < edge) return SMPP_ESME_RINVDSTADR;
  if (k->max_sps > 0 && s->acct != NULL) {
    int64_t second = now / 1000;
    if (s->acct->second != second) {
      s->acct->second = second;
      s->acct->count = 0;
    }
    if (s->acct->count >= k->max_sps) return SMPP_ESME_RTHROTTLED;
    s->acct->count++;
  }
  return SMPP_ESME_ROK;
}

static void count_status(struct sim_stats *st, uint32_t status) {
  switch (status) {
  case SMPP_ESME_RTHROTTLED: st->throttled++; break;
  case SMPP_ESME_RMSGQFUL: st->queue_full++; break;
  case SMPP_ESME_RSYSERR: st->syserr++; break;
  case SMPP_ESME_RINVDSTADR: st->reject++; break;
  default: break;
  }
}

static int pick_outcome(struct sim_smsc *m, const struct smpp_sm *sm) {
  const struct sim_knobs *k = m->knobs;
  if (ends_with(sm->destination_addr, "0000")) return SMPP_STATE_UNDELIVERABLE;
  double total = k->delivered + k->undeliverable + k->expired;
  if (total <= 0) return SMPP_STATE_DELIVERED;
  double r = sim_rng_01(&m->rng) * total;
  if (r < k->delivered) return SMPP_STATE_DELIVERED;
  if (r < k->delivered + k->undeliverable) return SMPP_STATE_UNDELIVERABLE;
  return SMPP_STATE_EXPIRED;
}

/* Fills a job from the submit's record. */
static void job_from_record(struct sim_job *job, const struct sim_sess *s,
                            const struct sim_submit *r) {
  job->sess_id = s->id;
  job->submit_seq = r->seq;
  job->status = r->status;
  job->outcome = r->outcome;
  job->submit_ms = r->time_ms;
  job->src_ton = r->src_ton;
  job->src_npi = r->src_npi;
  job->dst_ton = r->dst_ton;
  job->dst_npi = r->dst_npi;
  job->data_coding = r->data_coding;
  memcpy(job->system_id, r->system_id, sizeof job->system_id);
  memcpy(job->source_addr, r->source_addr, sizeof job->source_addr);
  memcpy(job->dest_addr, r->dest_addr, sizeof job->dest_addr);
  memcpy(job->message_id, r->message_id, sizeof job->message_id);
  size_t udh = 0;
  if ((r->esm_class & SMPP_ESM_UDHI) && r->sm_len > 0 && (size_t)r->sm[0] + 1 <= r->sm_len)
    udh = (size_t)r->sm[0] + 1;
  size_t n = r->sm_len - udh;
  if (n > SIM_JOB_TEXT) n = SIM_JOB_TEXT;
  memcpy(job->text, r->sm + udh, n);
  job->text_len = (uint8_t)n;
}

static void on_submit(struct sim_smsc *m, struct sim_sess *s, const struct smpp_pdu *p) {
  const struct sim_knobs *k = m->knobs;
  if (s->bind != SIM_BOUND_TX && s->bind != SIM_BOUND_TRX) {
    m->stats.bind_status++;
    sim_answer_submit(s, p->sequence_number, SMPP_ESME_RINVBNDSTS, NULL);
    return;
  }
  int64_t now = sim_wall_ms();
  m->stats.submits++;
  s->submits++;
  struct sim_submit *rec = sim_ring_push(m->ring);
  record(rec, s, p, now);
  if (k->disconnect_after > 0 && s->submits >= (uint64_t)k->disconnect_after) {
    rec->dropped = 1;
    m->stats.dropped++;
    m->stats.injected_disconnects++;
    kk_info(s->ctx, "dropping the connection at submit %" PRIu64 " (disconnect_after)",
            s->submits);
    sim_sess_drain(s, "disconnect_after reached");
    return;
  }

  uint32_t status = pick_status(m, s, &p->body.sm, now);
  rec->status = status;
  uint64_t num = 0;
  int want_receipt = 0;
  if (status != SMPP_ESME_ROK) {
    count_status(&m->stats, status);
  } else {
    num = m->next_msgid++;
    sim_format_id(num, k->message_id, rec->message_id);
    rec->outcome = (uint8_t)pick_outcome(m, &p->body.sm);
    if (rec->outcome == SMPP_STATE_DELIVERED) m->stats.delivered++;
    else if (rec->outcome == SMPP_STATE_UNDELIVERABLE) m->stats.undeliverable++;
    else m->stats.expired++;
    int rd = p->body.sm.registered_delivery & 3;
    want_receipt = rd == 1 || (rd == 2 && rec->outcome != SMPP_STATE_DELIVERED);
  }

  if (k->resp_delay_ms == 0 && !want_receipt) {
    sim_answer_submit(s, rec->seq, status, rec->message_id);
    return;
  }
  struct sim_job *job = sim_jobs_alloc(&m->jobs);
  if (job == NULL) {
    sim_answer_submit(s, rec->seq, status, rec->message_id);
    if (want_receipt) m->stats.receipts_dropped++;
    return;
  }
  job_from_record(job, s, rec);
  job->msgid_num = num;
  job->msgid_fmt = (uint8_t)k->message_id;
  job->want_receipt = (uint8_t)want_receipt;
  int64_t loop_now = (int64_t)uv_now(m->loop);
  if (k->resp_delay_ms > 0) {
    job->kind = SIM_JOB_RESP;
    sim_deliver_schedule(m, job, loop_now + k->resp_delay_ms);
  } else {
    sim_answer_submit(s, rec->seq, status, rec->message_id);
    sim_deliver_receipt_later(m, job);
  }
}

/* ---- dispatch ---- */

void sim_smsc_on_bad(struct sim_sess *s, const struct smpp_pdu *p, const struct smpp_err *err) {
  kk_warnx(s->ctx, "undecodable %s (0x%08x) seq=%u: %s at offset %zu%s",
           smpp_cmd_name(p->command_id), (unsigned)p->command_id, p->sequence_number,
           smpp_status_name(err->status), err->offset,
           (p->command_id & SMPP_RESP) ? ", ignored" : "");
  if (!(p->command_id & SMPP_RESP)) s->smsc->stats.generic_nacks++;
}

int sim_smsc_on_pdu(struct sim_sess *s, const struct smpp_pdu *p) {
  struct sim_smsc *m = s->smsc;
  if (kk_log_level <= KK_LOG_DEBUG) {
    char dump[512];
    smpp_dump(p, dump, sizeof dump);
    kk_debug(s->ctx, "in: %s", dump);
  }
  switch (p->command_id) {
  case SMPP_BIND_RECEIVER:
  case SMPP_BIND_TRANSMITTER:
  case SMPP_BIND_TRANSCEIVER:
    on_bind(m, s, p);
    break;
  case SMPP_SUBMIT_SM:
    on_submit(m, s, p);
    break;
  case SMPP_UNBIND:
    answer(s, SMPP_UNBIND_RESP, p->sequence_number, SMPP_ESME_ROK);
    sim_sess_drain(s, "unbound");
    break;
  case SMPP_DELIVER_SM_RESP:
  case SMPP_GENERIC_NACK:
    sim_deliver_answered(m, s, p);
    break;
  default:
    /* enquire_link_resp, unbind_resp and other answers: nothing to do. */
    if (p->command_id & SMPP_RESP) break;
    m->stats.generic_nacks++;
    return KK_ENOENT;
  }
  return 0;
}

/* ---- lifetime and counters ---- */

/* Parses "id:password,id:password" into arrays that free_smsc frees.
   Returns 0 or KK_EINVAL. */
static int parse_accounts(struct sim_smsc *m, const char *list) {
  if (list == NULL || *list == '\0') return 0;
  size_t cap = 1;
  for (const char *c = list; *c; c++) cap += *c == ',';
  m->acc_id = kk_xcalloc(cap, sizeof *m->acc_id);
  m->acc_pw = kk_xcalloc(cap, sizeof *m->acc_pw);
  const char *p = list;
  while (*p) {
    size_t len = strcspn(p, ",");
    const char *colon = memchr(p, ':', len);
    if (colon == NULL) return KK_EINVAL;
    size_t idlen = (size_t)(colon - p), pwlen = len - idlen - 1;
    if (idlen == 0 || idlen > 15 || pwlen > 8) return KK_EINVAL;
    memcpy(m->acc_id[m->naccounts], p, idlen);
    memcpy(m->acc_pw[m->naccounts], colon + 1, pwlen);
    m->naccounts++;
    p += len;
    if (*p == ',') p++;
  }
  return 0;
}

static void free_smsc(struct sim_smsc *m) {
  sim_jobs_fini(&m->jobs);
  for (size_t i = 0; i < m->nacct; i++) free(m->acct[i]);
  free(m->acc_id);
  free(m->acc_pw);
  free(m);
}

int sim_smsc_start(uv_loop_t *loop, const struct sim_smsc_opts *o, struct sim_smsc **out) {
  *out = NULL;
  struct sim_smsc *m = kk_xcalloc(1, sizeof *m);
  m->loop = loop;
  m->knobs = o->knobs;
  m->ring = o->ring;
  m->timer_due = -1;
  m->date_minute = -1;
  m->slots_hi = 1;
  m->next_seq = 1;
  sim_rng_seed(&m->rng, o->seed);
  /* Ids start at a seed-dependent point so restarts rarely repeat them. */
  m->next_msgid = 0x10000000u + sim_rng_next(&m->rng) % 0xE0000000u;
  sim_jobs_init(&m->jobs, (int64_t)uv_now(loop));
  int rc = parse_accounts(m, o->accounts);
  if (rc) {
    free_smsc(m);
    return rc;
  }
  uv_tcp_init(loop, &m->listener);
  m->listener.data = m;
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  *out = m;
  return sim_sess_listen(m, o->addr);
}

void sim_smsc_stop(struct sim_smsc *m) {
  if (m->closing) return;
  m->closing = 1;
  uv_close((uv_handle_t *)&m->listener, NULL);
  uv_close((uv_handle_t *)&m->timer, NULL);
  for (size_t i = 1; i < SIM_MAX_SESSIONS; i++)
    if (m->slots[i]) sim_sess_stop(m->slots[i], "shutting down");
  sim_sess_flush_all(m);
}

void sim_smsc_free(struct sim_smsc *m) {
  if (m != NULL) free_smsc(m);
}

void sim_smsc_reset(struct sim_smsc *m) {
  memset(&m->stats, 0, sizeof m->stats);
  sim_smsc_knobs_changed(m);
}

void sim_smsc_knobs_changed(struct sim_smsc *m) {
  for (size_t i = 1; i < m->slots_hi; i++)
    if (m->slots[i]) m->slots[i]->submits = 0;
}

static void put(json_t *o, const char *name, uint64_t v) {
  json_object_set_new(o, name, json_integer((json_int_t)v));
}

json_t *sim_smsc_stats(const struct sim_smsc *m) {
  const struct sim_stats *st = &m->stats;
  uint64_t bound = 0;
  for (size_t i = 1; i < m->slots_hi; i++) {
    const struct sim_sess *s = m->slots[i];
    if (s && s->bind != SIM_UNBOUND && !s->ss->draining) bound++;
  }
  json_t *o = json_object();
  put(o, "binds", st->binds);
  put(o, "bind_failures", st->bind_failures);
  put(o, "sessions", bound);
  put(o, "connections", m->nsessions);
  put(o, "submits", st->submits);
  json_t *e = json_object();
  put(e, "throttled", st->throttled);
  put(e, "queue_full", st->queue_full);
  put(e, "syserr", st->syserr);
  put(e, "reject", st->reject);
  put(e, "bind_status", st->bind_status);
  put(e, "dropped", st->dropped);
  json_object_set_new(o, "submit_errors", e);
  json_t *oc = json_object();
  put(oc, "delivered", st->delivered);
  put(oc, "undeliverable", st->undeliverable);
  put(oc, "expired", st->expired);
  json_object_set_new(o, "outcomes", oc);
  put(o, "receipts_sent", st->receipts_sent);
  put(o, "receipts_resent", st->receipts_resent);
  put(o, "receipts_acked", st->receipts_acked);
  put(o, "receipts_nacked", st->receipts_nacked);
  put(o, "receipts_failed", st->receipts_failed);
  put(o, "receipts_dropped", st->receipts_dropped);
  put(o, "jobs_pending", m->jobs.live);
  put(o, "mo_sent", st->mo_sent);
  put(o, "disconnects", st->disconnects);
  put(o, "injected_disconnects", st->injected_disconnects);
  put(o, "generic_nacks", st->generic_nacks);
  return o;
}
