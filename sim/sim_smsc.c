/*
 * sim_smsc.c - what the simulated SMSC does with each PDU: binds, submits
 * (injected errors, drawn outcomes), delivery receipts with resends, and MO
 * messages (see sim_smsc.h).
 *
 * A submit is answered at once, or after resp_delay_ms through the job heap.
 * Its receipt, when registered_delivery asks for one, is due a random
 * dlr_delay_ms after the answer and goes to the submitting session when it
 * can take it, else to another receiver or transceiver of the same
 * system_id. A receipt not answered with deliver_sm_resp ROK is resent every
 * receipt_retry_ms up to receipt_attempts sends. While no session can take
 * it, it waits up to SIM_RCPT_HOLD_MS. Receipt dates are UTC.
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

#define SIM_RCPT_HOLD_MS 300000   /* how long a receipt waits for a session */
#define SIM_RCPT_WAIT_MS 1000     /* how often a waiting receipt looks for one */
#define SIM_TIMER_BATCH 50000     /* jobs run per timer callback at most */

/* ---- small helpers ---- */

static int64_t wall_ms(void) {
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

/* Copies a C string for a log line, replacing unprintable bytes. */
static void printable(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++)
    dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
  dst[i] = '\0';
}

static int ends_with(struct smpp_str v, const char *suffix) {
  size_t n = strlen(suffix);
  return v.len >= n && memcmp(v.p + v.len - n, suffix, n) == 0;
}

static uint32_t next_seq(struct sim_smsc *m) {
  uint32_t seq = m->next_seq++;
  if (m->next_seq > 0x7FFFFFFFu) m->next_seq = 1;
  return seq;
}

/* Writes v in hex (lower case) or decimal into out (at least 24 bytes). */
static void format_id(uint64_t v, int fmt, char *out) {
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

/* Writes the receipt date (YYMMDDhhmm, UTC) of a wall-clock time. */
static void receipt_date(struct sim_smsc *m, int64_t ms, char out[16]) {
  int64_t minute = ms / 60000;
  if (minute != m->date_minute) {
    time_t t = (time_t)(minute * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(m->date_text, sizeof m->date_text, "%y%m%d%H%M", &tm);
    m->date_minute = minute;
  }
  memcpy(out, m->date_text, 16);
}

static const char *state_text(int state) {
  switch (state) {
  case SMPP_STATE_DELIVERED: return "DELIVRD";
  case SMPP_STATE_UNDELIVERABLE: return "UNDELIV";
  case SMPP_STATE_EXPIRED: return "EXPIRED";
  default: return "UNKNOWN";
  }
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

static void answer_submit(struct sim_sess *s, uint32_t seq, uint32_t status,
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

/* Returns the rate counters of a system_id, or NULL when the table is full. */
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
  printable(shown, sizeof shown, id);
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

static int64_t receipt_delay(struct sim_smsc *m) {
  return sim_rng_range(&m->rng, m->knobs->dlr_delay_ms[0], m->knobs->dlr_delay_ms[1]);
}

static void on_timer(uv_timer_t *t);

/* Makes sure the timer fires no later than the earliest job. */
static void arm_timer(struct sim_smsc *m) {
  if (m->closing) return;
  int64_t due = sim_jobs_next_due(&m->jobs);
  if (due < 0) {
    if (m->timer_due >= 0) uv_timer_stop(&m->timer);
    m->timer_due = -1;
    return;
  }
  if (m->timer_due >= 0 && m->timer_due <= due) return;
  int64_t now = (int64_t)uv_now(m->loop);
  uv_timer_start(&m->timer, on_timer, due > now ? (uint64_t)(due - now) : 0, 0);
  m->timer_due = due;
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
    answer_submit(s, p->sequence_number, SMPP_ESME_RINVBNDSTS, NULL);
    return;
  }
  int64_t now = wall_ms();
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
    sim_sess_drain_close(s, "disconnect_after reached");
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
    format_id(num, k->message_id, rec->message_id);
    rec->outcome = (uint8_t)pick_outcome(m, &p->body.sm);
    if (rec->outcome == SMPP_STATE_DELIVERED) m->stats.delivered++;
    else if (rec->outcome == SMPP_STATE_UNDELIVERABLE) m->stats.undeliverable++;
    else m->stats.expired++;
    int rd = p->body.sm.registered_delivery & 3;
    want_receipt = rd == 1 || (rd == 2 && rec->outcome != SMPP_STATE_DELIVERED);
  }

  if (k->resp_delay_ms == 0 && !want_receipt) {
    answer_submit(s, rec->seq, status, rec->message_id);
    return;
  }
  struct sim_job *job = sim_jobs_alloc(&m->jobs);
  if (job == NULL) {
    answer_submit(s, rec->seq, status, rec->message_id);
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
    sim_jobs_schedule(&m->jobs, job, loop_now + k->resp_delay_ms);
  } else {
    answer_submit(s, rec->seq, status, rec->message_id);
    job->kind = SIM_JOB_RECEIPT;
    job->give_up = loop_now + SIM_RCPT_HOLD_MS;
    sim_jobs_schedule(&m->jobs, job, loop_now + receipt_delay(m));
  }
  arm_timer(m);
}

/* ---- receipts ---- */

static int takes_deliveries(const struct sim_sess *s) {
  return (s->bind == SIM_BOUND_RX || s->bind == SIM_BOUND_TRX) && sim_sess_usable(s);
}

static struct sim_sess *receipt_session(struct sim_smsc *m, const struct sim_job *job) {
  struct sim_sess *s = sim_sess_find(m, job->sess_id);
  if (s != NULL && takes_deliveries(s)) return s;
  for (size_t i = 1; i < m->slots_hi; i++) {
    s = m->slots[i];
    if (s != NULL && takes_deliveries(s) && strcmp(s->system_id, job->system_id) == 0)
      return s;
  }
  return NULL;
}

/* Writes the first 20 characters of the message for the receipt text, as
   characters that read the same in ASCII and GSM-7; others become '?'. */
static void receipt_text(const struct sim_job *job, char out[24]) {
  char utf8[4 * SIM_JOB_TEXT + 4];
  int n = sms_decode(job->data_coding, job->text, job->text_len, utf8, sizeof utf8);
  if (n < 0) n = (int)strlen(utf8);
  int chars = 0;
  for (int i = 0; i < n && chars < 20; i++) {
    unsigned char c = (unsigned char)utf8[i];
    if ((c & 0xC0) == 0x80) continue;   /* inside a multi-byte character */
    int same = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (c >= '%' && c <= '?') || (c >= ' ' && c <= '#');
    out[chars++] = same ? (char)c : '?';
  }
  out[chars] = '\0';
}

static int send_receipt(struct sim_smsc *m, struct sim_sess *s, const struct sim_job *job,
                        uint32_t seq) {
  int fmt = job->msgid_fmt;
  if (m->knobs->receipt_id == SIM_RCPT_ID_ALT) fmt = !fmt;
  char id[24], submit_date[16], done_date[16], text[24];
  format_id(job->msgid_num, fmt, id);
  receipt_date(m, job->submit_ms, submit_date);
  receipt_date(m, wall_ms(), done_date);
  receipt_text(job, text);
  int err = job->outcome == SMPP_STATE_UNDELIVERABLE ? 1 : 0;
  char sm[256];
  int n = snprintf(sm, sizeof sm,
                   "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%03d text:%s",
                   id, job->outcome == SMPP_STATE_DELIVERED ? "001" : "000", submit_date,
                   done_date, state_text(job->outcome), err, text);

  struct smpp_pdu r;
  memset(&r, 0, sizeof r);
  r.command_id = SMPP_DELIVER_SM;
  r.sequence_number = seq;
  struct smpp_sm *d = &r.body.sm;
  d->source_addr_ton = job->dst_ton;
  d->source_addr_npi = job->dst_npi;
  d->source_addr = smpp_cstr(job->dest_addr);
  d->dest_addr_ton = job->src_ton;
  d->dest_addr_npi = job->src_npi;
  d->destination_addr = smpp_cstr(job->source_addr);
  d->esm_class = SMPP_ESM_DLR;
  d->short_message.p = (const uint8_t *)sm;
  d->short_message.len = (size_t)n;
  uint8_t state = job->outcome;
  uint8_t net_err[3] = {3, 0, (uint8_t)err};   /* 3 = GSM network */
  if (m->knobs->receipt_tlvs) {
    smpp_tlv_add(&r, SMPP_TLV_RECEIPTED_MESSAGE_ID, id, strlen(id) + 1);
    smpp_tlv_add(&r, SMPP_TLV_MESSAGE_STATE, &state, 1);
    smpp_tlv_add(&r, SMPP_TLV_NETWORK_ERROR_CODE, net_err, sizeof net_err);
  }
  return sim_sess_send(s, &r);
}

static void run_receipt(struct sim_smsc *m, struct sim_job *job, int64_t now) {
  if (job->ack_seq) sim_jobs_take_ack(&m->jobs, job->ack_seq);  /* not answered in time */
  if (job->attempts >= m->knobs->receipt_attempts) {
    m->stats.receipts_failed++;
    kk_debug("smsc", "receipt %s to %s given up after %d sends", job->message_id,
             job->system_id, job->attempts);
    sim_jobs_release(&m->jobs, job);
    return;
  }
  struct sim_sess *s = receipt_session(m, job);
  if (s == NULL) {
    if (now >= job->give_up) {
      m->stats.receipts_dropped++;
      sim_jobs_release(&m->jobs, job);
    } else {
      sim_jobs_schedule(&m->jobs, job, now + SIM_RCPT_WAIT_MS);
    }
    return;
  }
  uint32_t seq = next_seq(m);
  int rc = send_receipt(m, s, job, seq);
  if (rc == KK_ECLOSED || rc == KK_ENOSPC) {
    sim_jobs_schedule(&m->jobs, job, now + SIM_RCPT_WAIT_MS);
    return;
  }
  if (rc) {
    m->stats.receipts_dropped++;
    sim_jobs_release(&m->jobs, job);
    return;
  }
  if (job->attempts++ > 0) m->stats.receipts_resent++;
  m->stats.receipts_sent++;
  sim_jobs_await(&m->jobs, job, seq);
  sim_jobs_schedule(&m->jobs, job, now + m->knobs->receipt_retry_ms);
}

static void run_job(struct sim_smsc *m, struct sim_job *job, int64_t now) {
  if (job->kind == SIM_JOB_RECEIPT) {
    run_receipt(m, job, now);
    return;
  }
  struct sim_sess *s = sim_sess_find(m, job->sess_id);
  if (s != NULL && !s->draining)
    answer_submit(s, job->submit_seq, job->status, job->message_id);
  if (!job->want_receipt) {
    sim_jobs_release(&m->jobs, job);
    return;
  }
  job->kind = SIM_JOB_RECEIPT;
  job->give_up = now + SIM_RCPT_HOLD_MS;
  sim_jobs_schedule(&m->jobs, job, now + receipt_delay(m));
}

static void on_timer(uv_timer_t *t) {
  struct sim_smsc *m = t->data;
  m->timer_due = -1;
  int64_t now = (int64_t)uv_now(m->loop);
  struct sim_job *job;
  for (int n = 0; n < SIM_TIMER_BATCH && (job = sim_jobs_pop_due(&m->jobs, now)); n++)
    run_job(m, job, now);
  sim_sess_flush_all(m);
  arm_timer(m);
}

/* A deliver_sm_resp or generic_nack for a PDU we sent. */
static void on_answer(struct sim_smsc *m, struct sim_sess *s, const struct smpp_pdu *p) {
  struct sim_job *job = sim_jobs_take_ack(&m->jobs, p->sequence_number);
  if (job == NULL) return;   /* an MO's answer, or a receipt already given up */
  if (p->command_id == SMPP_DELIVER_SM_RESP && p->command_status == SMPP_ESME_ROK) {
    m->stats.receipts_acked++;
    sim_jobs_release(&m->jobs, job);
    return;
  }
  m->stats.receipts_nacked++;
  kk_debug(s->ctx, "receipt %s refused with %s, resending later", job->message_id,
           smpp_status_name(p->command_status));
  sim_jobs_schedule(&m->jobs, job, (int64_t)uv_now(m->loop) + m->knobs->receipt_retry_ms);
  arm_timer(m);
}

/* ---- dispatch ---- */

void sim_smsc_on_pdu(struct sim_sess *s, const uint8_t *buf, size_t len) {
  struct sim_smsc *m = s->smsc;
  struct smpp_pdu p;
  struct smpp_err err;
  if (smpp_decode(buf, len, &p, &err) != 0) {
    kk_warnx(s->ctx, "undecodable %s (0x%08x) seq=%u: %s at offset %zu%s",
             smpp_cmd_name(p.command_id), (unsigned)p.command_id, p.sequence_number,
             smpp_status_name(err.status), err.offset,
             (p.command_id & SMPP_RESP) ? ", ignored" : "");
    if (p.command_id & SMPP_RESP) return;
    m->stats.generic_nacks++;
    answer(s, SMPP_GENERIC_NACK, p.sequence_number, err.status);
    return;
  }
  if (kk_log_level <= KK_LOG_DEBUG) {
    char dump[512];
    smpp_dump(&p, dump, sizeof dump);
    kk_debug(s->ctx, "in: %s", dump);
  }
  switch (p.command_id) {
  case SMPP_BIND_RECEIVER:
  case SMPP_BIND_TRANSMITTER:
  case SMPP_BIND_TRANSCEIVER:
    on_bind(m, s, &p);
    break;
  case SMPP_SUBMIT_SM:
    on_submit(m, s, &p);
    break;
  case SMPP_ENQUIRE_LINK:
    answer(s, SMPP_ENQUIRE_LINK_RESP, p.sequence_number, SMPP_ESME_ROK);
    break;
  case SMPP_UNBIND:
    answer(s, SMPP_UNBIND_RESP, p.sequence_number, SMPP_ESME_ROK);
    sim_sess_drain_close(s, "unbound");
    break;
  case SMPP_DELIVER_SM_RESP:
  case SMPP_GENERIC_NACK:
    on_answer(m, s, &p);
    break;
  case SMPP_ENQUIRE_LINK_RESP:
  case SMPP_UNBIND_RESP:
    break;
  default:
    if (p.command_id & SMPP_RESP) break;
    m->stats.generic_nacks++;
    answer(s, SMPP_GENERIC_NACK, p.sequence_number, SMPP_ESME_RINVCMDID);
    break;
  }
}

/* ---- MO ---- */

/* International number (digits, optional +) or an alphanumeric name. */
static int mo_addr(const char *a, struct smpp_str *out, uint8_t *ton, uint8_t *npi) {
  const char *digits = a[0] == '+' ? a + 1 : a;
  size_t n = strlen(digits);
  int numeric = n > 0 && strspn(digits, "0123456789") == n;
  if (numeric) {
    *out = smpp_cstr(digits);
    *ton = 1;
    *npi = 1;
  } else {
    n = strlen(a);
    *out = smpp_cstr(a);
    *ton = 5;
    *npi = 0;
  }
  return n >= 1 && n <= 20 ? 0 : KK_EINVAL;
}

int sim_smsc_send_mo(struct sim_smsc *m, const struct sim_mo *mo, int *sent) {
  *sent = 0;
  struct smpp_pdu r;
  memset(&r, 0, sizeof r);
  struct smpp_sm *d = &r.body.sm;
  if (mo->from == NULL || mo->to == NULL || mo->text == NULL ||
      mo_addr(mo->from, &d->source_addr, &d->source_addr_ton, &d->source_addr_npi) ||
      mo_addr(mo->to, &d->destination_addr, &d->dest_addr_ton, &d->dest_addr_npi))
    return KK_EINVAL;
  struct sms_encoded enc;
  int rc = sms_encode(mo->text, strlen(mo->text), m->mo_ref, &enc);
  if (rc) return rc;
  m->mo_ref++;

  size_t count = 0;
  for (size_t i = 1; i < m->slots_hi; i++) {
    struct sim_sess *c = m->slots[i];
    if (c && takes_deliveries(c) && (!mo->system_id || strcmp(c->system_id, mo->system_id) == 0))
      count++;
  }
  if (count == 0) return KK_ENOENT;
  size_t pick = m->mo_turn++ % count;
  struct sim_sess *s = NULL;
  for (size_t i = 1; i < m->slots_hi && s == NULL; i++) {
    struct sim_sess *c = m->slots[i];
    if (c && takes_deliveries(c) && (!mo->system_id || strcmp(c->system_id, mo->system_id) == 0)) {
      if (pick == 0) s = c;
      else pick--;
    }
  }

  r.command_id = SMPP_DELIVER_SM;
  d->esm_class = enc.udhi ? SMPP_ESM_UDHI : 0;
  d->data_coding = (uint8_t)enc.coding;
  for (int i = 0; i < enc.nparts; i++) {
    r.sequence_number = next_seq(m);
    d->short_message.p = enc.part[i].data;
    d->short_message.len = enc.part[i].len;
    rc = sim_sess_send(s, &r);
    if (rc) break;
    (*sent)++;
  }
  m->stats.mo_sent += (uint64_t)*sent;
  sim_sess_flush_all(m);
  char from[24];
  printable(from, sizeof from, mo->from);
  kk_info(s->ctx, "MO from %s: %d of %d part(s) sent", from, *sent, enc.nparts);
  return rc ? KK_EIO : 0;
}

/* ---- lifetime and counters ---- */

/* Parses "id:password,id:password". Returns 0 or KK_EINVAL. */
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
  sim_jobs_init(&m->jobs);
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

void sim_smsc_close(struct sim_smsc *m) {
  if (m->closing) return;
  m->closing = 1;
  uv_close((uv_handle_t *)&m->listener, NULL);
  uv_close((uv_handle_t *)&m->timer, NULL);
  for (size_t i = 1; i < SIM_MAX_SESSIONS; i++)
    if (m->slots[i]) sim_sess_close(m->slots[i], "shutting down");
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
    if (s && s->bind != SIM_UNBOUND && !s->draining) bound++;
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
