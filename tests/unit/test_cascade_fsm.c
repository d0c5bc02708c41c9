/*
 * test_cascade_fsm.c - the cascade's rules (cascade/cascade_fsm), one table
 * row per rule README's "Send over a cascade" states.
 *
 * Each row is a message (its steps, which of them can be used, its status),
 * one of its attempts and an event; the runner gives the rules what they
 * ask for, as the store does, and compares what they decided, written as
 * text (see render()), with the row:
 *   set=<status>[$cost]       the attempt's row        add<j>=<chan>/<status>[/why]
 *   step<j>  done  cleardue   the message's row        wait@<t>   its deadline moves
 *   fin=<status>/<chan>[+D][+C][+W@t]   its status (done, no longer due, deadline)
 *   ev=<status>/<chan>[!]     its event and callback (! with an error)
 *   tr=<chan>:<status>[!]     the attempt's own event
 *   n:sms n:chan n:wait@<t> n:cancel    notes for after the commit
 *   c:<counter>/<chan>        counters
 * A row with a second event ("then") runs it on what the first left; the
 * two decisions are joined by " | ".
 */
#include <stdio.h>
#include <string.h>

#include "cascade/cascade_fsm.h"
#include "channel/channel.h"
#include "kk_test.h"

enum kind { START, EVENT, DEADLINE };

struct row {
  const char *name;
  enum kind kind;
  const char *steps;              /* "channel/wait/timeout_ms,..." */
  const char *use;                /* per step: y usable, n no address, c not configured;
                                     NULL: all usable */
  /* the message */
  enum kk_status mst;
  enum kk_chan mch;
  int mstep, mdone, mtwice;
  int64_t expires;
  /* the attempt the event is about (id 100 + its step) */
  int astep;
  enum kk_status ast;
  int64_t sent, deliv, read;
  int tries;
  int gone;                       /* DEADLINE: the attempt is not found */
  /* every attempt of the message: "step:chan:status:sent:delivered:read,..." */
  const char *atts;
  /* the event */
  enum kk_status ev;
  const char *error;
  int64_t at;
  int units;
  int64_t price;
  enum kk_status then;            /* a second event on the same attempt, or KK_ST_NONE */
  /* what must follow */
  const char *fx;
  enum kk_status want_st;
  enum kk_chan want_ch;
  int want_done, want_twice;
  int64_t want_cost;
  unsigned want_need;             /* what the rules asked for */
  const char *want_error;         /* the message's event's error, when checked */
};

#define S3 "vk/read/10000,viber/delivered/10000,sms/delivered/0"

static const char *counter_name(int c) {
  static const char *const names[] = {"started", "skipped", "sent", "delivered", "read",
                                      "failed", "timeout", "fallthrough", "late", "twice",
                                      "finished"};
  return names[c];
}

static void put(char *out, size_t cap, const char *fmt, const char *a, const char *b) {
  size_t o = strlen(out);
  snprintf(out + o, cap - o, fmt, a, b);
}

static void render(const struct cfsm_out *o, char *out, size_t cap, const char **error) {
  static const char *const notes[] = {"sms", "chan", "wait", "cancel"};
  for (int i = 0; i < o->nfx; i++) {
    const struct cfsm_fx *f = &o->fx[i];
    char b[96] = "";
    const char *ch = kk_chan_name(f->chan), *st = kk_status_name(f->status);
    switch (f->kind) {
    case CFSM_FX_ATT_SET:
      snprintf(b, sizeof b, "set=%s", st);
      if (f->cost) snprintf(b + strlen(b), sizeof b - strlen(b), "$%lld", (long long)f->cost);
      break;
    case CFSM_FX_ATT_ADD:
      snprintf(b, sizeof b, "add%d=%s/%s%s", f->step, ch, st,
               f->use == CFSM_USE_NO_ADDRESS ? "/noaddr"
               : f->use == CFSM_USE_NO_CONFIG ? "/noconf" : "");
      break;
    case CFSM_FX_MSG_STEP: snprintf(b, sizeof b, "step%d", f->step); break;
    case CFSM_FX_MSG_DONE: snprintf(b, sizeof b, "done"); break;
    case CFSM_FX_MSG_CLEAR_DUE: snprintf(b, sizeof b, "cleardue"); break;
    case CFSM_FX_MSG_WAIT: snprintf(b, sizeof b, "wait@%lld", (long long)f->t0); break;
    case CFSM_FX_MSG_FIN:
      snprintf(b, sizeof b, "fin=%s/%s%s%s", st, ch, f->flags & CFSM_FIN_DONE ? "+D" : "",
               f->flags & CFSM_FIN_CLEAR_DUE ? "+C" : "");
      if (f->flags & CFSM_FIN_WAIT)
        snprintf(b + strlen(b), sizeof b - strlen(b), "+W@%lld", (long long)f->t0);
      break;
    case CFSM_FX_EVENT:
      snprintf(b, sizeof b, "ev=%s/%s%s", st, ch, f->error ? "!" : "");
      *error = f->error;
      break;
    case CFSM_FX_TRACE: snprintf(b, sizeof b, "tr=%s:%s%s", ch, st, f->error ? "!" : ""); break;
    case CFSM_FX_NOTE:
      snprintf(b, sizeof b, "n:%s", notes[f->flags]);
      if (f->flags == CFSM_NOTE_WAIT)
        snprintf(b + strlen(b), sizeof b - strlen(b), "@%lld", (long long)f->t0);
      break;
    case CFSM_FX_COUNT: snprintf(b, sizeof b, "c:%s/%s", counter_name(f->flags), ch); break;
    }
    put(out, cap, "%s%s", out[0] ? " " : "", b);
  }
}

static void parse_steps(const char *text, struct cfsm_msg *m) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", text);
  m->nsteps = 0;
  for (char *save, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
    char ch[24], wait[16];
    long long ms;
    ASSERT_EQ(sscanf(p, "%23[^/]/%15[^/]/%lld", ch, wait, &ms), 3);
    struct cfsm_step *s = &m->steps[m->nsteps++];
    s->chan = kk_chan_parse(ch);
    s->wait = kk_status_rank(kk_status_parse(wait));
    s->timeout_ms = ms;
  }
}

static void supply_attempts(const struct row *t, struct cfsm_msg *m) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", t->atts ? t->atts : "");
  m->natt = 0;
  for (char *save, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
    char ch[24], st[16];
    int step;
    long long s, d, r;
    ASSERT_EQ(sscanf(p, "%d:%23[^:]:%15[^:]:%lld:%lld:%lld", &step, ch, st, &s, &d, &r), 6);
    struct cfsm_att *a = &m->att[m->natt++];
    memset(a, 0, sizeof *a);
    a->id = 100 + step;
    a->step = step;
    a->chan = kk_chan_parse(ch);
    a->status = kk_status_parse(st);
    a->sent_at = s;
    a->delivered_at = d;
    a->read_at = r;
  }
}

/* As the store does: from `from` up to the first step that can be used. */
static void supply_use(const struct row *t, struct cfsm_msg *m, int from) {
  for (int j = from; j < m->nsteps; j++) {
    char u = t->use ? t->use[j] : 'y';
    m->use[j] = u == 'y' ? CFSM_USE_OK : u == 'n' ? CFSM_USE_NO_ADDRESS : CFSM_USE_NO_CONFIG;
    if (u == 'y') break;
  }
}

/* Runs one event of the row on m and a until the rules ask for nothing. */
static void run_once(const struct row *t, struct cfsm_msg *m, struct cfsm_att *a,
                     enum kk_status status, struct cfsm_out *out, unsigned *need) {
  struct cfsm_event ev = {.status = status, .error = t->error, .at = t->at, .units = t->units};
  for (int i = 0;; i++) {
    ASSERT(i < 4);
    if (t->kind == START)
      cfsm_start(m, t->at, out);
    else if (t->kind == EVENT)
      cfsm_event(m, a, &ev, out);
    else
      cfsm_deadline(m, t->gone ? NULL : a, t->astep, t->at, out);
    if (out->need == 0) return;
    *need |= out->need;
    if (out->need & CFSM_NEED_ATTEMPTS) supply_attempts(t, m);
    if (out->need & CFSM_NEED_PRICE) {
      ev.price = t->price;
      ev.price_known = 1;
    }
    if (out->need & CFSM_NEED_USE) supply_use(t, m, out->need_from);
  }
}

/* The attempt as the first event's row write left it. */
static void apply_att_set(const struct cfsm_out *out, struct cfsm_att *a) {
  for (int i = 0; i < out->nfx; i++) {
    const struct cfsm_fx *f = &out->fx[i];
    if (f->kind != CFSM_FX_ATT_SET) continue;
    a->status = f->status;
    a->sent_at = f->t0;
    a->delivered_at = f->t1;
    a->read_at = f->t2;
  }
}

static void run_row(const struct row *t) {
  struct cfsm_msg m;
  memset(&m, 0, sizeof m);
  parse_steps(t->steps, &m);
  m.status = t->mst;
  m.chan = t->mch;
  m.step = t->mstep;
  m.done = t->mdone;
  m.delivered_twice = t->mtwice;
  m.expires_at = t->expires;
  m.inserting = t->kind == START;
  m.attempt_id = t->kind == START ? 0 : 100 + t->mstep;
  m.natt = -1;
  struct cfsm_att a = {.id = 100 + t->astep, .chan = m.steps[t->astep].chan, .status = t->ast,
                       .step = t->astep, .sent_at = t->sent, .delivered_at = t->deliv,
                       .read_at = t->read, .tries = t->tries};
  static struct cfsm_out out;
  char got[1024] = "";
  const char *error = NULL;
  unsigned need = 0;
  run_once(t, &m, &a, t->ev, &out, &need);
  render(&out, got, sizeof got, &error);
  if (t->then != KK_ST_NONE) {
    apply_att_set(&out, &a);
    m.natt = -1;
    run_once(t, &m, &a, t->then, &out, &need);
    put(got, sizeof got, "%s%s", " |", "");
    render(&out, got, sizeof got, &error);
  }
  if (strcmp(got, t->fx) != 0)
    kk_test_fail(__FILE__, __LINE__, "%s: effects\n  got  %s\n  want %s", t->name, got, t->fx);
  if (m.status != t->want_st || m.chan != t->want_ch || m.done != t->want_done ||
      m.delivered_twice != t->want_twice || m.cost != t->want_cost || need != t->want_need)
    kk_test_fail(__FILE__, __LINE__,
                 "%s: message %s/%s done %d twice %d cost %lld need %u, want %s/%s done %d "
                 "twice %d cost %lld need %u",
                 t->name, kk_status_name(m.status), kk_chan_name(m.chan), m.done,
                 m.delivered_twice, (long long)m.cost, need, kk_status_name(t->want_st),
                 kk_chan_name(t->want_ch), t->want_done, t->want_twice,
                 (long long)t->want_cost, t->want_need);
  if (t->want_error && (error == NULL || strcmp(error, t->want_error) != 0))
    kk_test_fail(__FILE__, __LINE__, "%s: error \"%s\", want \"%s\"", t->name,
                 error ? error : "(none)", t->want_error);
}

/* Defaults of a row: a message at its first step, still accepted. Rows
   override the defaults they name, which is what the warning is about. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif
#define ROW(...) {.mst = KK_ST_ACCEPTED, .mch = KK_CHAN_NONE, .ast = KK_ST_SENDING,          \
                  .at = 1000, .price = 5, .then = KK_ST_NONE, __VA_ARGS__}

static const struct row start_rows[] = {
    ROW(.name = "start: the first step starts, its deadline is armed", .kind = START,
        .steps = S3, .fx = "add0=vk/sending c:started/vk n:chan n:wait@11000",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_USE),
    ROW(.name = "start: a step without an address is skipped", .kind = START, .steps = S3,
        .use = "nyy",
        .fx = "add0=vk/skipped/noaddr c:skipped/vk add1=viber/sending c:started/viber n:chan "
              "n:wait@11000",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VIBER, .want_need = CFSM_NEED_USE),
    ROW(.name = "start: a channel configured nowhere is skipped", .kind = START, .steps = S3,
        .use = "cny",
        .fx = "add0=vk/skipped/noconf c:skipped/vk add1=viber/skipped/noaddr c:skipped/viber "
              "add2=sms/sending c:started/sms",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_SMS, .want_need = CFSM_NEED_USE),
    ROW(.name = "start: an SMS first step goes from the insert, no note", .kind = START,
        .steps = "sms/delivered/0", .fx = "add0=sms/sending c:started/sms",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_SMS, .want_need = CFSM_NEED_USE),
    ROW(.name = "start: every step skipped fails the message at once", .kind = START,
        .steps = "vk/read/10000,sms/delivered/0", .use = "nn",
        .fx = "add0=vk/skipped/noaddr c:skipped/vk add1=sms/skipped/noaddr c:skipped/sms "
              "c:finished/ ev=failed/!",
        .want_st = KK_ST_FAILED, .want_ch = KK_CHAN_NONE, .want_done = 1,
        .want_need = CFSM_NEED_USE, .want_error = "no channel of the cascade could be used"),
    ROW(.name = "start: no wait goes past the validity", .kind = START, .steps = S3,
        .expires = 5000, .fx = "add0=vk/sending c:started/vk n:chan n:wait@5000",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_USE),
    ROW(.name = "start: a last messenger step without timeout waits for the validity",
        .kind = START, .steps = "vk/read/0", .expires = 50000,
        .fx = "add0=vk/sending c:started/vk n:chan n:wait@50000", .want_st = KK_ST_ACCEPTED,
        .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_USE),
    ROW(.name = "start: an SMS step without timeout waits for its receipt", .kind = START,
        .steps = "sms/delivered/0", .expires = 50000, .fx = "add0=sms/sending c:started/sms",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_SMS, .want_need = CFSM_NEED_USE),
};

static const struct row event_rows[] = {
    /* ---- the provider's answer: the step's time starts, the price is due */
    ROW(.name = "sent: the step's wait starts at the provider's answer", .kind = EVENT,
        .steps = S3, .mch = KK_CHAN_VK, .ev = KK_ST_SENT,
        .fx = "set=sent$5 c:sent/vk n:wait@11000 fin=sent/vk+W@11000 ev=sent/vk",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK, .want_cost = 5,
        .want_need = CFSM_NEED_PRICE),
    ROW(.name = "sent: the wait never passes the validity", .kind = EVENT, .steps = S3,
        .mch = KK_CHAN_VK, .expires = 5000, .ev = KK_ST_SENT,
        .fx = "set=sent$5 c:sent/vk n:wait@5000 fin=sent/vk+W@5000 ev=sent/vk",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK, .want_cost = 5,
        .want_need = CFSM_NEED_PRICE),
    ROW(.name = "sent: a step without timeout keeps its deadline", .kind = EVENT,
        .steps = "vk/read/0", .mch = KK_CHAN_VK, .expires = 50000, .ev = KK_ST_SENT,
        .fx = "set=sent$5 c:sent/vk fin=sent/vk ev=sent/vk", .want_st = KK_ST_SENT,
        .want_ch = KK_CHAN_VK, .want_cost = 5, .want_need = CFSM_NEED_PRICE),
    ROW(.name = "sent: an SMS costs per segment and is due no more", .kind = EVENT,
        .steps = "sms/delivered/0", .mch = KK_CHAN_SMS, .ev = KK_ST_SENT, .units = 3,
        .fx = "set=sent$15 c:sent/sms fin=sent/sms+C ev=sent/sms", .want_st = KK_ST_SENT,
        .want_ch = KK_CHAN_SMS, .want_cost = 15, .want_need = CFSM_NEED_PRICE),
    ROW(.name = "sent: without a price the attempt costs nothing", .kind = EVENT,
        .steps = "vk/read/0", .mch = KK_CHAN_VK, .ev = KK_ST_SENT, .price = 0,
        .fx = "set=sent c:sent/vk fin=sent/vk ev=sent/vk", .want_st = KK_ST_SENT,
        .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_PRICE),
    ROW(.name = "wait sent: the provider's answer ends the cascade", .kind = EVENT,
        .steps = "telegram/sent/10000,sms/delivered/0", .mch = KK_CHAN_TELEGRAM,
        .ev = KK_ST_SENT,
        .fx = "set=sent$5 c:sent/telegram c:finished/ fin=sent/telegram+D ev=sent/telegram",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_TELEGRAM, .want_done = 1, .want_cost = 5,
        .want_need = CFSM_NEED_PRICE),
    /* ---- wait levels */
    ROW(.name = "wait delivered: delivery ends the cascade, nothing more is read",
        .kind = EVENT, .steps = "viber/delivered/10000,sms/delivered/0", .mst = KK_ST_SENT,
        .mch = KK_CHAN_VIBER, .ast = KK_ST_SENT, .sent = 500, .ev = KK_ST_DELIVERED, .at = 2000,
        .fx = "set=delivered c:delivered/viber c:finished/ fin=delivered/viber+D "
              "ev=delivered/viber",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_VIBER, .want_done = 1),
    ROW(.name = "wait read: delivery shows but the step goes on", .kind = EVENT,
        .steps = "viber/read/10000,sms/delivered/0", .mst = KK_ST_SENT, .mch = KK_CHAN_VIBER,
        .ast = KK_ST_SENT, .sent = 500, .ev = KK_ST_DELIVERED,
        .fx = "set=delivered c:delivered/viber fin=delivered/viber ev=delivered/viber",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_VIBER),
    ROW(.name = "wait read: reading ends the cascade", .kind = EVENT, .steps = S3,
        .mst = KK_ST_SENT, .mch = KK_CHAN_VK, .ast = KK_ST_SENT, .sent = 500,
        .ev = KK_ST_READ,
        .fx = "set=read c:read/vk c:finished/ fin=read/vk+D ev=read/vk", .want_st = KK_ST_READ,
        .want_ch = KK_CHAN_VK, .want_done = 1),
    ROW(.name = "read before the answer counts as sent and read, billed once", .kind = EVENT,
        .steps = S3, .mch = KK_CHAN_VK, .ev = KK_ST_READ,
        .fx = "set=read$5 c:sent/vk c:read/vk c:finished/ fin=read/vk+D ev=read/vk",
        .want_st = KK_ST_READ, .want_ch = KK_CHAN_VK, .want_done = 1, .want_cost = 5,
        .want_need = CFSM_NEED_PRICE),
    ROW(.name = "wait delivered: an SMS receipt ends the cascade and the SMS's due time",
        .kind = EVENT, .steps = "sms/delivered/0", .mst = KK_ST_SENT, .mch = KK_CHAN_SMS,
        .ast = KK_ST_SENT, .sent = 500, .ev = KK_ST_DELIVERED,
        .fx = "set=delivered c:delivered/sms c:finished/ fin=delivered/sms+D+C "
              "ev=delivered/sms",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_SMS, .want_done = 1),
    /* ---- repeated and meaningless statuses */
    ROW(.name = "a repeated status changes nothing", .kind = EVENT, .steps = S3,
        .mst = KK_ST_SENT, .mch = KK_CHAN_VK, .ast = KK_ST_SENT, .sent = 500, .ev = KK_ST_SENT,
        .fx = "", .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK),
    ROW(.name = "a sent after read changes nothing", .kind = EVENT, .steps = S3,
        .mst = KK_ST_READ, .mch = KK_CHAN_VK, .mdone = 1, .ast = KK_ST_READ, .sent = 500,
        .read = 700, .ev = KK_ST_SENT, .fx = "", .want_st = KK_ST_READ, .want_ch = KK_CHAN_VK,
        .want_done = 1),
    ROW(.name = "a status that says nothing of the person is ignored", .kind = EVENT,
        .steps = S3, .mch = KK_CHAN_VK, .ev = KK_ST_TIMEOUT, .fx = "",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VK),
    ROW(.name = "a failure after delivery changes nothing we knew", .kind = EVENT,
        .steps = "viber/read/10000,sms/delivered/0", .mst = KK_ST_DELIVERED,
        .mch = KK_CHAN_VIBER, .ast = KK_ST_DELIVERED, .sent = 500, .deliv = 600,
        .ev = KK_ST_FAILED, .fx = "", .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_VIBER),
    ROW(.name = "a failure of a skipped attempt changes nothing", .kind = EVENT, .steps = S3,
        .mst = KK_ST_SENT, .mch = KK_CHAN_VIBER, .mstep = 1, .astep = 0, .ast = KK_ST_SKIPPED,
        .ev = KK_ST_FAILED, .fx = "", .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VIBER),
    /* ---- failures: on to the next step */
    ROW(.name = "a refused send starts the next step", .kind = EVENT, .steps = S3,
        .mch = KK_CHAN_VK, .ev = KK_ST_FAILED, .error = "901 blocked",
        .fx = "set=failed c:failed/vk c:fallthrough/vk add1=viber/sending step1 c:started/viber "
              "n:chan n:wait@11000 tr=vk:failed!",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VIBER, .want_need = CFSM_NEED_USE),
    ROW(.name = "an interrupted send fails its step and the cascade goes on", .kind = EVENT,
        .steps = "viber/delivered/10000,sms/delivered/0", .mch = KK_CHAN_VIBER,
        .ev = KK_ST_FAILED, .error = "interrupted: kaskad stopped",
        .fx = "set=failed c:failed/viber c:fallthrough/viber add1=sms/sending step1 c:started/sms "
              "n:sms tr=viber:failed!",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_SMS, .want_need = CFSM_NEED_USE),
    ROW(.name = "a failure skips the next steps that cannot be used", .kind = EVENT,
        .steps = S3, .use = "yny", .mch = KK_CHAN_VK, .ev = KK_ST_FAILED,
        .fx = "set=failed c:failed/vk c:fallthrough/vk add1=viber/skipped/noaddr "
              "c:skipped/viber add2=sms/sending step2 c:started/sms n:sms tr=vk:failed",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_SMS, .want_need = CFSM_NEED_USE),
    ROW(.name = "the last step failing with nothing reached fails the message",
        .kind = EVENT, .steps = "vk/read/10000,sms/delivered/0", .mch = KK_CHAN_SMS,
        .mstep = 1, .astep = 1, .ev = KK_ST_FAILED, .error = "0x0b invalid destination",
        .fx = "set=failed c:failed/sms cleardue done c:finished/ fin=failed/sms ev=failed/sms!",
        .want_st = KK_ST_FAILED, .want_ch = KK_CHAN_SMS, .want_done = 1,
        .want_error = "0x0b invalid destination"),
    ROW(.name = "failed only when no attempt reached anything: sent stays", .kind = EVENT,
        .steps = "vk/read/10000,sms/delivered/0", .mst = KK_ST_SENT, .mch = KK_CHAN_VK,
        .mstep = 1, .astep = 1, .ev = KK_ST_FAILED, .error = "0x0b",
        .fx = "set=failed c:failed/sms cleardue done c:finished/ tr=sms:failed!",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK, .want_done = 1),
    ROW(.name = "an SMS expiring at the last step expires the message", .kind = EVENT,
        .steps = "sms/delivered/0", .mst = KK_ST_SENT, .mch = KK_CHAN_SMS, .ast = KK_ST_SENT,
        .sent = 500, .atts = "0:sms:sent:500:0:0", .ev = KK_ST_EXPIRED, .error = "EXPIRED",
        .fx = "set=expired c:failed/sms cleardue done c:finished/ fin=expired/sms "
              "ev=expired/sms!",
        .want_st = KK_ST_EXPIRED, .want_ch = KK_CHAN_SMS, .want_done = 1,
        .want_need = CFSM_NEED_ATTEMPTS),
    ROW(.name = "a failure after sent: the next step starts, the others decide the status",
        .kind = EVENT, .steps = "viber/delivered/10000,sms/delivered/0", .mst = KK_ST_SENT,
        .mch = KK_CHAN_VIBER, .ast = KK_ST_SENT, .sent = 500, .atts = "0:viber:sent:500:0:0",
        .ev = KK_ST_FAILED, .error = "gone",
        .fx = "set=failed c:failed/viber c:fallthrough/viber add1=sms/sending step1 c:started/sms "
              "n:sms fin=sent/sms tr=viber:failed!",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_SMS,
        .want_need = CFSM_NEED_ATTEMPTS | CFSM_NEED_USE),
    /* ---- best status and its channel */
    ROW(.name = "best status: a later failure leaves what an earlier channel reached",
        .kind = EVENT, .steps = "vk/read/1000,viber/delivered/10000,sms/delivered/0",
        .mst = KK_ST_SENT, .mch = KK_CHAN_VK, .mstep = 1, .astep = 1, .ast = KK_ST_SENT,
        .sent = 1500, .atts = "0:vk:timeout:500:0:0,1:viber:sent:1500:0:0",
        .ev = KK_ST_FAILED,
        .fx = "set=failed c:failed/viber c:fallthrough/viber add2=sms/sending step2 c:started/sms "
              "n:sms tr=viber:failed",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK,
        .want_need = CFSM_NEED_ATTEMPTS | CFSM_NEED_USE),
    ROW(.name = "best status: of equal ones, the channel that reached it first",
        .kind = EVENT, .steps = "whatsapp/read/1000,viber/read/1000,sms/delivered/0",
        .mst = KK_ST_DELIVERED, .mch = KK_CHAN_WHATSAPP, .mstep = 2, .astep = 2,
        .ast = KK_ST_SENT, .sent = 1500,
        .atts = "0:whatsapp:timeout:700:900:0,1:viber:timeout:1100:800:0,2:sms:sent:1500:0:0",
        .ev = KK_ST_EXPIRED, .at = 3000,
        .fx = "set=expired c:failed/sms cleardue done c:finished/ fin=delivered/viber "
              "tr=sms:expired",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_VIBER, .want_done = 1,
        .want_need = CFSM_NEED_ATTEMPTS),
    ROW(.name = "best status: a better level from a later channel takes over", .kind = EVENT,
        .steps = "vk/read/1000,viber/delivered/10000", .mst = KK_ST_SENT, .mch = KK_CHAN_VK,
        .mstep = 1, .astep = 1, .ast = KK_ST_SENT, .sent = 1500,
        .atts = "0:vk:timeout:500:0:0,1:viber:sent:1500:0:0", .ev = KK_ST_DELIVERED,
        .at = 2000,
        .fx = "set=delivered c:delivered/viber c:finished/ fin=delivered/viber+D "
              "ev=delivered/viber",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_VIBER, .want_done = 1,
        .want_need = CFSM_NEED_ATTEMPTS),
    /* ---- late statuses and delivered twice */
    ROW(.name = "late: a read after the step fell through is recorded, starts nothing",
        .kind = EVENT, .steps = S3, .mst = KK_ST_SENT, .mch = KK_CHAN_VIBER, .mstep = 1,
        .astep = 0, .ast = KK_ST_TIMEOUT, .sent = 500,
        .atts = "0:vk:timeout:500:0:0,1:viber:sending:0:0:0", .ev = KK_ST_READ, .at = 3000,
        .fx = "set=read c:read/vk c:late/vk fin=read/vk ev=read/vk", .want_st = KK_ST_READ,
        .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_ATTEMPTS),
    ROW(.name = "late: a read after another channel delivered counts delivered twice",
        .kind = EVENT, .steps = S3, .mst = KK_ST_DELIVERED, .mch = KK_CHAN_VIBER, .mstep = 1,
        .mdone = 1, .astep = 0, .ast = KK_ST_TIMEOUT, .sent = 500,
        .atts = "0:vk:timeout:500:0:0,1:viber:delivered:1500:1600:0", .ev = KK_ST_READ,
        .at = 3000,
        .fx = "set=read c:read/vk c:late/vk c:twice/vk fin=read/vk ev=read/vk",
        .want_st = KK_ST_READ, .want_ch = KK_CHAN_VK, .want_done = 1, .want_twice = 1,
        .want_need = CFSM_NEED_ATTEMPTS),
    ROW(.name = "late: a failure after the step fell through starts nothing", .kind = EVENT,
        .steps = S3, .mst = KK_ST_SENT, .mch = KK_CHAN_VIBER, .mstep = 1, .astep = 0,
        .ast = KK_ST_TIMEOUT, .sent = 500, .atts = "0:vk:timeout:500:0:0,1:viber:sending:0:0:0",
        .ev = KK_ST_FAILED, .error = "gone",
        .fx = "set=failed c:failed/vk c:late/vk fin=sent/vk tr=vk:failed!",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_ATTEMPTS),
    ROW(.name = "late: a status for an ended cascade starts nothing", .kind = EVENT,
        .steps = "vk/sent/1000,sms/delivered/0", .mst = KK_ST_SENT, .mch = KK_CHAN_VK,
        .mdone = 1, .ast = KK_ST_SENT, .sent = 500, .ev = KK_ST_READ, .at = 3000,
        .atts = "0:vk:sent:500:0:0",
        .fx = "set=read c:read/vk c:late/vk fin=read/vk ev=read/vk", .want_st = KK_ST_READ,
        .want_ch = KK_CHAN_VK, .want_done = 1, .want_need = CFSM_NEED_ATTEMPTS),
    ROW(.name = "twice: the current step delivers after an earlier channel was read",
        .kind = EVENT, .steps = S3, .mst = KK_ST_READ, .mch = KK_CHAN_VK, .mstep = 1,
        .astep = 1, .ast = KK_ST_SENT, .sent = 1500,
        .atts = "0:vk:timeout:500:0:900,1:viber:sent:1500:0:0", .ev = KK_ST_DELIVERED,
        .at = 2000,
        .fx = "set=delivered c:delivered/viber c:twice/viber c:finished/ fin=read/vk+D "
              "tr=viber:delivered",
        .want_st = KK_ST_READ, .want_ch = KK_CHAN_VK, .want_done = 1, .want_twice = 1,
        .want_need = CFSM_NEED_ATTEMPTS),
    ROW(.name = "twice: the first step, still current, reads nothing else", .kind = EVENT,
        .steps = S3, .mst = KK_ST_SENT, .mch = KK_CHAN_VK, .ast = KK_ST_SENT, .sent = 500,
        .ev = KK_ST_DELIVERED,
        .fx = "set=delivered c:delivered/vk fin=delivered/vk ev=delivered/vk",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_VK),
    /* ---- early statuses: held by the store, applied after the answer */
    ROW(.name = "early: a delivery that overtook the answer applies after it",
        .kind = EVENT, .steps = "whatsapp/delivered/10000,sms/delivered/0",
        .mch = KK_CHAN_WHATSAPP, .ev = KK_ST_SENT, .then = KK_ST_DELIVERED,
        .fx = "set=sent$5 c:sent/whatsapp n:wait@11000 fin=sent/whatsapp+W@11000 "
              "ev=sent/whatsapp | set=delivered c:delivered/whatsapp c:finished/ "
              "fin=delivered/whatsapp+D ev=delivered/whatsapp",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_WHATSAPP, .want_done = 1,
        .want_cost = 5, .want_need = CFSM_NEED_PRICE),
    ROW(.name = "early: a failure that overtook the answer fails the step after it",
        .kind = EVENT, .steps = "whatsapp/delivered/10000,sms/delivered/0",
        .mch = KK_CHAN_WHATSAPP, .ev = KK_ST_SENT, .then = KK_ST_FAILED,
        .atts = "0:whatsapp:sent:1000:0:0",
        .fx = "set=sent$5 c:sent/whatsapp n:wait@11000 fin=sent/whatsapp+W@11000 "
              "ev=sent/whatsapp | set=failed c:failed/whatsapp c:fallthrough/whatsapp "
              "add1=sms/sending step1 c:started/sms n:sms fin=sent/sms tr=whatsapp:failed",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_SMS, .want_cost = 5,
        .want_need = CFSM_NEED_PRICE | CFSM_NEED_ATTEMPTS | CFSM_NEED_USE),
};

static const struct row deadline_rows[] = {
    ROW(.name = "deadline: the step times out and the next one starts", .kind = DEADLINE,
        .steps = S3, .mst = KK_ST_SENT, .mch = KK_CHAN_VK, .ast = KK_ST_SENT, .sent = 500,
        .at = 11000,
        .fx = "set=timeout tr=vk:timeout c:timeout/vk c:fallthrough/vk add1=viber/sending "
              "step1 c:started/viber n:chan n:wait@21000",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_USE),
    ROW(.name = "deadline: a send still in kaskad's queue moves its deadline", .kind = DEADLINE,
        .steps = S3, .mch = KK_CHAN_VK, .at = 11000, .fx = "wait@21000 n:wait@21000",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VK),
    ROW(.name = "deadline: a provider that asked for a retry uses the step's time",
        .kind = DEADLINE, .steps = S3, .mch = KK_CHAN_VK, .tries = 1, .at = 11000,
        .fx = "set=timeout tr=vk:timeout c:timeout/vk c:fallthrough/vk add1=viber/sending "
              "step1 c:started/viber n:chan n:wait@21000",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VIBER, .want_need = CFSM_NEED_USE),
    ROW(.name = "deadline: an SMS step's time runs from its start, the SMS is cancelled",
        .kind = DEADLINE, .steps = "sms/delivered/5000,vk/read/0", .mch = KK_CHAN_SMS,
        .at = 6000,
        .fx = "set=timeout tr=sms:timeout c:timeout/sms c:fallthrough/sms cleardue n:cancel "
              "add1=vk/sending step1 c:started/vk n:chan",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_USE),
    ROW(.name = "deadline: the validity ends the cascade, the message expires",
        .kind = DEADLINE, .steps = S3, .mst = KK_ST_SENT, .mch = KK_CHAN_VK, .expires = 11000,
        .ast = KK_ST_SENT, .sent = 500, .at = 11000,
        .fx = "set=expired tr=vk:expired c:timeout/vk c:finished/ fin=expired/vk+D "
              "ev=expired/vk!",
        .want_st = KK_ST_EXPIRED, .want_ch = KK_CHAN_VK, .want_done = 1,
        .want_error = "the validity ended before a step reached what it waited for"),
    ROW(.name = "deadline: at the validity's end a delivered message stays delivered",
        .kind = DEADLINE, .steps = "viber/read/10000,sms/delivered/0", .mst = KK_ST_DELIVERED,
        .mch = KK_CHAN_VIBER, .expires = 11000, .ast = KK_ST_DELIVERED, .sent = 500,
        .deliv = 600, .at = 11000,
        .fx = "set=expired tr=viber:expired c:timeout/viber c:finished/ "
              "fin=delivered/viber+D",
        .want_st = KK_ST_DELIVERED, .want_ch = KK_CHAN_VIBER, .want_done = 1),
    ROW(.name = "deadline: a queued send at the validity's end expires", .kind = DEADLINE,
        .steps = S3, .mch = KK_CHAN_VK, .expires = 11000, .at = 11000,
        .fx = "set=expired tr=vk:expired c:timeout/vk c:finished/ fin=expired/vk+D "
              "ev=expired/vk!",
        .want_st = KK_ST_EXPIRED, .want_ch = KK_CHAN_VK, .want_done = 1),
    ROW(.name = "deadline: with no usable step left the message fails", .kind = DEADLINE,
        .steps = "vk/read/10000,viber/delivered/0", .use = "yn", .mch = KK_CHAN_VK,
        .tries = 1, .at = 11000,
        .fx = "set=timeout tr=vk:timeout c:timeout/vk c:fallthrough/vk "
              "add1=viber/skipped/noaddr c:skipped/viber done c:finished/ fin=failed/vk "
              "ev=failed/vk!",
        .want_st = KK_ST_FAILED, .want_ch = KK_CHAN_VK, .want_done = 1,
        .want_need = CFSM_NEED_USE, .want_error = "no step reached what it waited for in time"),
    ROW(.name = "deadline: a step that already passed on is left alone", .kind = DEADLINE,
        .steps = S3, .mst = KK_ST_SENT, .mch = KK_CHAN_VIBER, .mstep = 1, .astep = 0,
        .ast = KK_ST_TIMEOUT, .sent = 500, .at = 11000, .fx = "", .want_st = KK_ST_SENT,
        .want_ch = KK_CHAN_VIBER),
    ROW(.name = "deadline: an ended cascade is left alone", .kind = DEADLINE, .steps = S3,
        .mst = KK_ST_READ, .mch = KK_CHAN_VK, .mdone = 1, .ast = KK_ST_READ, .sent = 500,
        .read = 600, .at = 11000, .fx = "", .want_st = KK_ST_READ, .want_ch = KK_CHAN_VK,
        .want_done = 1),
    ROW(.name = "deadline: an attempt no longer found still passes the step on",
        .kind = DEADLINE, .steps = S3, .mch = KK_CHAN_VK, .gone = 1, .at = 11000,
        .fx = "add1=viber/sending step1 c:started/viber n:chan n:wait@21000",
        .want_st = KK_ST_ACCEPTED, .want_ch = KK_CHAN_VIBER, .want_need = CFSM_NEED_USE),
    ROW(.name = "deadline: the next step's wait is capped by the validity", .kind = DEADLINE,
        .steps = S3, .mst = KK_ST_SENT, .mch = KK_CHAN_VK, .expires = 15000,
        .ast = KK_ST_SENT, .sent = 500, .at = 11000,
        .fx = "set=timeout tr=vk:timeout c:timeout/vk c:fallthrough/vk add1=viber/sending "
              "step1 c:started/viber n:chan n:wait@15000",
        .want_st = KK_ST_SENT, .want_ch = KK_CHAN_VK, .want_need = CFSM_NEED_USE),
};

#define RUN_TABLE(tab)                                                  \
  do {                                                                  \
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab)[0]; i++) run_row(&(tab)[i]); \
  } while (0)

KK_TEST(cascade_fsm_start) { RUN_TABLE(start_rows); }
KK_TEST(cascade_fsm_events) { RUN_TABLE(event_rows); }
KK_TEST(cascade_fsm_deadlines) { RUN_TABLE(deadline_rows); }

KK_TEST(cascade_fsm_rows_count) {
  /* The rules are covered row by row; the tables do not shrink unnoticed. */
  size_t n = sizeof start_rows / sizeof start_rows[0] + sizeof event_rows / sizeof event_rows[0] +
             sizeof deadline_rows / sizeof deadline_rows[0];
  ASSERT(n >= 40);
}

KK_TEST(kk_status_names_and_ranks) {
  for (int i = 0; i < KK_ST_COUNT; i++)
    ASSERT_EQ(kk_status_parse(kk_status_name((enum kk_status)i)), i);
  ASSERT_EQ(kk_status_parse("bogus"), KK_ST_NONE);
  ASSERT_EQ(kk_status_parse(NULL), KK_ST_NONE);
  ASSERT_STR_EQ(kk_status_name(KK_ST_NONE), "");
  ASSERT_EQ(kk_status_rank(KK_ST_READ), 3);
  ASSERT_EQ(kk_status_rank(KK_ST_DELIVERED), 2);
  ASSERT_EQ(kk_status_rank(KK_ST_SENT), 1);
  ASSERT_EQ(kk_status_rank(KK_ST_TIMEOUT), 0);
  ASSERT_EQ(kk_status_rank(KK_ST_FAILED), 0);
  ASSERT_EQ(kk_status_of_rank(2), KK_ST_DELIVERED);
  ASSERT_EQ(kk_status_of_rank(0), KK_ST_NONE);
}

KK_TEST(kk_chan_names_and_addresses) {
  for (int i = 0; i < KK_CHAN_COUNT; i++)
    ASSERT_EQ(kk_chan_parse(kk_chan_name((enum kk_chan)i)), i);
  ASSERT_EQ(kk_chan_parse(""), KK_CHAN_NONE);
  ASSERT_EQ(kk_chan_parse("pigeon"), KK_CHAN_NONE);
  ASSERT_STR_EQ(kk_chan_address_field(KK_CHAN_VK), "vk_id");
  ASSERT(kk_chan_address_field(KK_CHAN_SMS) == NULL);
  ASSERT_EQ(kk_chan_phone_fallback(KK_CHAN_VIBER), 1);
  ASSERT_EQ(kk_chan_phone_fallback(KK_CHAN_EMAIL), 0);
}

/* The channel list and the driver table agree: every driver is a channel
   with the same address rules, and every channel has a driver. */
KK_TEST(kk_chan_list_matches_drivers) {
  int n = 0;
  const struct chan_driver *const *drv = chan_drivers(&n);
  ASSERT_EQ(n, KK_CHAN_COUNT);
  for (int i = 0; i < n; i++) {
    enum kk_chan ch = kk_chan_parse(drv[i]->name);
    ASSERT(ch != KK_CHAN_NONE);
    const char *field = kk_chan_address_field(ch);
    ASSERT((field == NULL) == (drv[i]->address_field == NULL));
    if (field) ASSERT_STR_EQ(field, drv[i]->address_field);
    ASSERT_EQ(kk_chan_phone_fallback(ch), drv[i]->phone_fallback);
  }
}

/* Message m, one SMS step (status mst, its cost), whose attempt 100 (status
   ast, sent at sent_at: 0 never) gets ev: the machine's answer once it
   needs nothing more read. */
static const struct cfsm_out *sms_event(struct cfsm_msg *m, enum kk_status mst, int64_t cost,
                                        enum kk_status ast, int64_t sent_at,
                                        const struct cfsm_event *ev) {
  memset(m, 0, sizeof *m);
  parse_steps("sms/delivered/0", m);
  m->status = mst;
  m->chan = KK_CHAN_SMS;
  m->attempt_id = 100;
  m->cost = cost;
  m->natt = -1;
  struct cfsm_att a = {.id = 100, .chan = KK_CHAN_SMS, .status = ast, .sent_at = sent_at};
  static struct cfsm_out out;
  for (int i = 0; i < 4; i++) {
    cfsm_event(m, &a, ev, &out);
    if (out.need == 0) break;
    if (out.need & CFSM_NEED_ATTEMPTS) m->natt = 0;
  }
  return &out;
}

/* The refund flag on the attempt's row: only a failure its provider does not
   bill, of an attempt that was sent (charged) before. */
static int refund_of(int64_t sent_at, enum kk_status ast, int unbilled) {
  struct cfsm_msg m;
  struct cfsm_event ev = {.status = KK_ST_FAILED, .error = "REJECTD", .at = 2000,
                          .unbilled = unbilled};
  const struct cfsm_out *out =
      sms_event(&m, sent_at ? KK_ST_SENT : KK_ST_ACCEPTED, 0, ast, sent_at, &ev);
  for (int i = 0; i < out->nfx; i++)
    if (out->fx[i].kind == CFSM_FX_ATT_SET) return out->fx[i].refund;
  return -1;
}

KK_TEST(cascade_fsm_refund_of_a_charged_attempt) {
  ASSERT_EQ(refund_of(500, KK_ST_SENT, 1), 1);
  ASSERT_EQ(refund_of(500, KK_ST_SENT, 0), 0);
  ASSERT_EQ(refund_of(0, KK_ST_SENDING, 1), 0);
  ASSERT_EQ(refund_of(500, KK_ST_TIMEOUT, 1), 1);
}

/* A refunded attempt costs nothing after all: its cost and its message's go
   down by what it was charged; a billed failure keeps its cost. */
static void refunded_costs(int unbilled, int64_t *att_cost, int64_t *msg_cost) {
  struct cfsm_msg m;
  struct cfsm_event ev = {.status = KK_ST_FAILED, .error = "REJECTD", .at = 2000,
                          .unbilled = unbilled, .charged = unbilled ? 7000 : 0};
  const struct cfsm_out *out = sms_event(&m, KK_ST_SENT, 7000, KK_ST_SENT, 500, &ev);
  *att_cost = -1;
  for (int i = 0; i < out->nfx; i++)
    if (out->fx[i].kind == CFSM_FX_ATT_SET) *att_cost = out->fx[i].cost;
  *msg_cost = m.cost;
}

KK_TEST(cascade_fsm_refund_lowers_the_costs) {
  int64_t att, msg;
  refunded_costs(1, &att, &msg);
  ASSERT_EQ(att, -7000);
  ASSERT_EQ(msg, 0);
  refunded_costs(0, &att, &msg);
  ASSERT_EQ(att, 0);
  ASSERT_EQ(msg, 7000);
}
