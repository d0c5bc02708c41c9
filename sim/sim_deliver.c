/*
 * sim_deliver.c - the deliver_sm PDUs the simulated SMSC originates:
 * delivery receipts and MO messages, and the job timer that drives delayed
 * answers and receipts.
 *
 * A receipt, when registered_delivery asks for one, is due a random
 * dlr_delay_ms after the submit's answer. It goes to the submitting session
 * when that can take it, else to another receiver or transceiver of the same
 * system_id. A receipt not answered with deliver_sm_resp ROK is resent every
 * receipt_retry_ms, up to receipt_attempts sends; while no session can take
 * it, it waits up to SIM_RCPT_HOLD_MS. Receipt dates are UTC, and the text
 * keeps only characters that read the same in ASCII and GSM-7.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "sim_smsc_int.h"
#include "smpp/smpp_dlr.h"
#include "sms/sms_enc.h"

#define SIM_RCPT_HOLD_MS 300000   /* how long a receipt waits for a session */
#define SIM_RCPT_WAIT_MS 1000     /* how often a waiting receipt looks for one */
#define SIM_TIMER_BATCH 50000     /* jobs run per timer callback at most */

static uint32_t next_seq(struct sim_smsc *m) {
  uint32_t seq = m->next_seq++;
  if (m->next_seq > 0x7FFFFFFFu) m->next_seq = 1;
  return seq;
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

static void on_timer(uv_timer_t *t);

/* Starts the timer for loop time due unless it is already set to fire by then. */
static void arm_timer(struct sim_smsc *m, int64_t due) {
  if (m->closing || due < 0) return;
  if (m->timer_due >= 0 && m->timer_due <= due) return;
  int64_t now = (int64_t)uv_now(m->loop);
  uv_timer_start(&m->timer, on_timer, due > now ? (uint64_t)(due - now) : 0, 0);
  m->timer_due = due;
}

void sim_deliver_schedule(struct sim_smsc *m, struct sim_job *job, int64_t due) {
  sim_jobs_schedule(&m->jobs, job, due);
  arm_timer(m, due);
}

void sim_deliver_receipt_later(struct sim_smsc *m, struct sim_job *job) {
  int64_t now = (int64_t)uv_now(m->loop);
  job->kind = SIM_JOB_RECEIPT;
  job->give_up = now + SIM_RCPT_HOLD_MS;
  int64_t delay = sim_rng_range(&m->rng, m->knobs->dlr_delay_ms[0], m->knobs->dlr_delay_ms[1]);
  sim_deliver_schedule(m, job, now + delay);
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
  sim_format_id(job->msgid_num, fmt, id);
  receipt_date(m, job->submit_ms, submit_date);
  receipt_date(m, sim_wall_ms(), done_date);
  receipt_text(job, text);
  int err = job->outcome == SMPP_STATE_UNDELIVERABLE ? 1 : 0;
  char sm[256];
  int n = snprintf(sm, sizeof sm,
                   "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%03d text:%s",
                   id, job->outcome == SMPP_STATE_DELIVERED ? "001" : "000", submit_date,
                   done_date, smpp_state_name(job->outcome), err, text);

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

static void run_job(void *arg, struct sim_job *job) {
  struct sim_smsc *m = arg;
  int64_t now = (int64_t)uv_now(m->loop);
  if (job->kind == SIM_JOB_RECEIPT) {
    run_receipt(m, job, now);
    return;
  }
  struct sim_sess *s = sim_sess_find(m, job->sess_id);
  if (s != NULL && !s->ss->draining)
    sim_answer_submit(s, job->submit_seq, job->status, job->message_id);
  if (!job->want_receipt) {
    sim_jobs_release(&m->jobs, job);
    return;
  }
  sim_deliver_receipt_later(m, job);
}

/* Runs the jobs that are due; the timer is re-armed for the next busy slot. */
static void on_timer(uv_timer_t *t) {
  struct sim_smsc *m = t->data;
  m->timer_due = -1;
  sim_jobs_run_due(&m->jobs, (int64_t)uv_now(m->loop), SIM_TIMER_BATCH, run_job, m);
  sim_sess_flush_all(m);
  arm_timer(m, sim_jobs_next_due(&m->jobs));
}

void sim_deliver_answered(struct sim_smsc *m, struct sim_sess *s, const struct smpp_pdu *p) {
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
  sim_deliver_schedule(m, job, (int64_t)uv_now(m->loop) + m->knobs->receipt_retry_ms);
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
  sim_printable(from, sizeof from, mo->from);
  kk_info(s->ctx, "MO from %s: %d of %d part(s) sent", from, *sent, enc.nparts);
  return rc ? KK_EIO : 0;
}

