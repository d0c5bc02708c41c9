/*
 * cascade_fsm.c - the cascade's rules (see cascade_fsm.h).
 *
 * Each entry point works on a copy of the message: when it finds that it
 * needs something the caller has not given (out->need), it stops and leaves
 * the message as it was, so that the caller can supply it and run the
 * event again from the start.
 */
#include "cascade/cascade_fsm.h"

#include <string.h>

#include "policy/pol_quiet.h"

/* What start_from() returns when the run stopped for want of step facts. */
#define LACKING (-2)

/* One run: the message being changed, what it produces, what it lacks. */
struct run {
  struct cfsm_msg m;
  struct cfsm_out *out;
  int event_recorded;             /* the message's event was recorded */
  /* row changes the message's refresh writes with its status (one write) */
  int w_done, w_clear_due, w_wait;
  int64_t w_wait_until;
  int delivered_twice_db;         /* as given, to see a change */
};

/* What one change of one attempt means for its message. */
struct change {
  int64_t attempt_id;             /* 0: none (every step skipped) */
  enum kk_chan chan;
  int level;                      /* what the attempt has reached now */
  int64_t cost;                   /* added to the message's cost */
  enum kk_status end_status;      /* failed / expired, if the cascade ends without success */
  const char *error;
  int lowered;                    /* the attempt lost a level it had (sent, then failed) */
  int expired;                    /* the cascade ends because the validity ended */
  const struct cfsm_att *changed; /* the attempt as it is now (lowered) */
};

static struct cfsm_fx *fx(struct run *r, enum cfsm_fx_kind kind) {
  struct cfsm_out *o = r->out;
  /* CFSM_MAX_FX is above what eight steps can produce; past it, the last
     slot is reused rather than written beyond the array. */
  struct cfsm_fx *f = &o->fx[o->nfx < CFSM_MAX_FX ? o->nfx++ : CFSM_MAX_FX - 1];
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->chan = KK_CHAN_NONE;
  f->status = KK_ST_NONE;
  return f;
}

static void count(struct run *r, enum kk_chan chan, enum cfsm_counter which) {
  struct cfsm_fx *f = fx(r, CFSM_FX_COUNT);
  f->chan = chan;
  f->flags = which;
}

static void note(struct run *r, enum cfsm_note kind, int64_t attempt_id, int64_t at) {
  struct cfsm_fx *f = fx(r, CFSM_FX_NOTE);
  f->flags = kind;
  f->attempt_id = attempt_id;
  f->t0 = at;
}

static int failure_status(enum kk_status st) {
  return st == KK_ST_FAILED || st == KK_ST_EXPIRED;
}

int cfsm_level(const struct cfsm_att *a) {
  if (a->read_at) return 3;
  if (a->delivered_at) return 2;
  if (a->sent_at && !failure_status(a->status)) return 1;
  return 0;
}

/*
 * When the wait of a step that started (or was handed to its provider) at
 * `at` ends: after its timeout, but never after the message's validity, so
 * that a long timeout cannot keep a message "sent" past expires_at. A
 * messenger step without a timeout (the last) waits until the validity
 * ends; an SMS step without one keeps waiting for its receipt (the SMS
 * centre has the same validity and reports the expiry itself). 0: none.
 */
static int64_t wait_deadline(const struct cfsm_msg *m, enum kk_chan chan, int64_t at,
                             int64_t timeout_ms) {
  int64_t t = timeout_ms > 0 ? at + timeout_ms : 0;
  if (t == 0 && chan == KK_CHAN_SMS) return 0;
  if (m->expires_at > 0 && (t == 0 || t > m->expires_at)) t = m->expires_at;
  return t;
}

/* Asks the caller for n; 1 when it is missing (the run stops). */
static int lacks(struct run *r, unsigned what, int from) {
  r->out->need |= what;
  if (what == CFSM_NEED_USE) r->out->need_from = from;
  return 1;
}

/*
 * Starts the first usable step at or after `from`: steps without an address
 * or a configured channel become skipped attempts. When none is left the
 * cascade is over. Returns the channel started (KK_CHAN_NONE: none), or
 * LACKING when the run lacks what the steps allow.
 */
static int start_from(struct run *r, int from, int64_t at) {
  struct cfsm_msg *m = &r->m;
  for (int j = from; j < m->nsteps; j++)
    if (m->use[j] == CFSM_USE_UNKNOWN) {
      lacks(r, CFSM_NEED_USE, j);
      return LACKING;
    } else if (m->use[j] == CFSM_USE_OK) {
      break;
    }
  /* A fall-through inside the recipient's quiet hours waits for them to end
     (the attempt is created now, due then). */
  int64_t created = at;
  const char *held = NULL;
  if (from > 0 && m->quiet_tz) {
    struct pol_window w = {m->quiet_from, m->quiet_to};
    int64_t until;
    if (pol_window_until(&w, m->quiet_tz, 0, at, &until) == 1 && until > at) {
      at = until;
      held = "quiet_hours";
    }
  }
  for (int j = from; j < m->nsteps; j++) {
    enum kk_chan ch = m->steps[j].chan;
    if (m->use[j] != CFSM_USE_OK) {
      struct cfsm_fx *f = fx(r, CFSM_FX_ATT_ADD);
      f->step = j;
      f->chan = ch;
      f->status = KK_ST_SKIPPED;
      f->use = m->use[j];
      f->t1 = created;
      count(r, ch, CFSM_C_SKIPPED);
      continue;
    }
    int sms = ch == KK_CHAN_SMS;
    struct cfsm_fx *f = fx(r, CFSM_FX_ATT_ADD);
    f->step = j;
    f->chan = ch;
    f->status = KK_ST_SENDING;
    f->use = CFSM_USE_OK;
    f->t0 = sms ? 0 : at;
    f->t1 = created;
    f->t2 = held ? at : 0;
    f->error = held;
    int64_t wait_until = wait_deadline(m, ch, at, m->steps[j].timeout_ms);
    /* Until some attempt reaches something, the message shows the channel
       being tried (as the refresh would). */
    int show = kk_status_rank(m->status) == 0 && !m->done;
    if (m->inserting) {
      m->due_at = sms ? at : 0;
      m->wait_until = wait_until;
    } else {
      f = fx(r, CFSM_FX_MSG_STEP);
      f->step = j;
      f->attempt_id = CFSM_NEW_ATT;
      f->t0 = sms ? at : 0;
      f->t1 = wait_until;
      f->t2 = at;
      f->chan = show ? ch : m->chan;
    }
    if (show) m->chan = ch;
    m->step = j;
    m->attempt_id = CFSM_NEW_ATT;
    count(r, ch, CFSM_C_STARTED);
    if (held) count(r, ch, CFSM_C_HELD);
    if (!sms)
      note(r, CFSM_NOTE_CHANNEL, CFSM_NEW_ATT, at);
    else if (!m->inserting)
      note(r, CFSM_NOTE_SMS, CFSM_NEW_ATT, at);
    if (wait_until) note(r, CFSM_NOTE_WAIT, CFSM_NEW_ATT, wait_until);
    return ch;
  }
  if (m->inserting) {
    m->due_at = m->wait_until = 0;
  } else {
    fx(r, CFSM_FX_MSG_DONE)->t0 = at;
  }
  m->done = 1;
  count(r, KK_CHAN_NONE, CFSM_C_FINISHED);
  return KK_CHAN_NONE;
}

/* The current step has ended, and with it the cascade. */
static void cascade_done(struct run *r) {
  r->m.done = 1;
  r->w_done = 1;            /* written by refresh */
  count(r, KK_CHAN_NONE, CFSM_C_FINISHED);
}

/* The best level the message's attempts reached (a as it is now) and the
   channel that reached it first, into *chan. */
static int best_of(const struct cfsm_msg *m, const struct cfsm_att *a, enum kk_chan *chan) {
  int b = 0;
  int64_t b_at = 0;
  for (int i = 0; i < m->natt; i++) {
    const struct cfsm_att *x = m->att[i].id == a->id ? a : &m->att[i];
    int lvl = cfsm_level(x);
    int64_t t[3] = {x->sent_at, x->delivered_at, x->read_at};
    if (lvl > b || (lvl == b && lvl > 0 && t[lvl - 1] < b_at)) {
      b = lvl;
      b_at = lvl ? t[lvl - 1] : 0;
      *chan = x->chan;
    }
  }
  return b;
}

/*
 * Moves the message by one change: its status is the best any attempt has
 * reached (the channel that reached it first keeps it), or, once the cascade
 * is over with nothing reached, failed / expired. Writes and records an event
 * only when something changed. 1 when the run lacks the attempts.
 */
static int refresh(struct run *r, int64_t at, const struct change *ch) {
  struct cfsm_msg *m = &r->m;
  int best = kk_status_rank(m->status);
  enum kk_status status = m->status;
  enum kk_chan chan = m->chan;
  const char *error = NULL;
  if (ch->lowered) {
    /* An attempt lost what it had reached (sent, then failed): the best of
       the others decides now. Rare, so the attempts are asked for. */
    if (m->natt < 0) return lacks(r, CFSM_NEED_ATTEMPTS, 0);
    enum kk_chan best_ch = KK_CHAN_NONE;
    best = best_of(m, ch->changed, &best_ch);
    if (best > 0) {
      status = kk_status_of_rank(best);
      chan = best_ch;
    } else {
      /* While the cascade goes on, the message keeps its status. */
      status = m->done ? ch->end_status : m->status;
      chan = ch->chan;
      if (m->done) error = ch->error;
    }
  } else if (ch->level > best) {
    status = kk_status_of_rank(ch->level);
    chan = ch->chan;
  } else if (best == 0 && !m->done && ch->chan != KK_CHAN_NONE) {
    chan = ch->chan;          /* nothing reached yet: the step being tried */
  } else if (m->done && best == 0) {
    status = ch->end_status;
    if (ch->chan != KK_CHAN_NONE) chan = ch->chan;
    error = ch->error ? ch->error
                      : ch->attempt_id ? NULL : "no channel of the cascade could be used";
  }
  if (ch->expired && m->done && kk_status_rank(status) < 2) {
    /* Handed over, never confirmed, and out of time: the message expired. */
    status = KK_ST_EXPIRED;
    error = ch->error;
  }
  int64_t cost = m->cost + ch->cost;
  int changed = status != m->status;
  if (!changed && chan == m->chan && cost == m->cost &&
      m->delivered_twice == r->delivered_twice_db && !r->w_done && !r->w_clear_due && !r->w_wait)
    return 0;
  if (m->inserting) {
    if (r->w_done || r->w_clear_due) m->due_at = 0;
    if (r->w_done) m->wait_until = 0;
    else if (r->w_wait) m->wait_until = r->w_wait_until;
  } else {
    struct cfsm_fx *f = fx(r, CFSM_FX_MSG_FIN);
    f->status = status;
    f->chan = chan;
    f->cost = cost;
    f->delivered_twice = m->delivered_twice;
    f->t0 = r->w_wait_until;
    f->t1 = at;
    f->flags = (r->w_done ? CFSM_FIN_DONE : 0) | (r->w_clear_due ? CFSM_FIN_CLEAR_DUE : 0) |
               (r->w_wait ? CFSM_FIN_WAIT : 0);
  }
  r->w_done = r->w_clear_due = r->w_wait = 0;
  m->chan = chan;
  m->cost = cost;
  r->delivered_twice_db = m->delivered_twice;
  if (!changed) return 0;
  m->status = status;
  r->event_recorded = 1;
  struct cfsm_fx *f = fx(r, CFSM_FX_EVENT);
  f->attempt_id = ch->attempt_id;
  f->status = status;
  f->chan = chan;
  f->error = error;
  f->cost = cost;
  f->t0 = at;
  return 0;
}

static void run_init(struct run *r, const struct cfsm_msg *m, struct cfsm_out *out) {
  r->m = *m;
  r->out = out;
  r->event_recorded = 0;
  r->w_done = r->w_clear_due = r->w_wait = 0;
  r->w_wait_until = 0;
  r->delivered_twice_db = m->delivered_twice;
  out->need = 0;
  out->need_from = 0;
  out->nfx = 0;
}

/* Keeps the run's message, unless the run stopped for want of something. */
static void run_end(struct run *r, struct cfsm_msg *m) {
  if (r->out->need) {
    r->out->nfx = 0;
    return;
  }
  *m = r->m;
}

void cfsm_start(struct cfsm_msg *m, int64_t at, struct cfsm_out *out) {
  struct run r;
  run_init(&r, m, out);
  int ch = start_from(&r, 0, at);
  if (ch != LACKING) {
    struct change c = {.attempt_id = ch == KK_CHAN_NONE ? 0 : CFSM_NEW_ATT,
                       .chan = ch == KK_CHAN_NONE ? KK_CHAN_NONE : (enum kk_chan)ch,
                       .end_status = KK_ST_FAILED};
    refresh(&r, at, &c);
  }
  run_end(&r, m);
}

/* Whether another attempt of the message reached the person too. */
static int others_delivered(const struct cfsm_msg *m, const struct cfsm_att *a) {
  int others = 0;
  for (int i = 0; i < m->natt; i++)
    if (m->att[i].id != a->id && cfsm_level(&m->att[i]) >= 2) others++;
  return others;
}

/* Counts what the attempt's change reached. */
static void count_change(struct run *r, const struct cfsm_att *a, int before, int after,
                         int failure, int current) {
  if (after > before && after >= 1 && before < 1) count(r, a->chan, CFSM_C_SENT);
  if (after >= 2 && before < 2 && after == 2) count(r, a->chan, CFSM_C_DELIVERED);
  if (after == 3 && before < 3) count(r, a->chan, CFSM_C_READ);
  if (failure) count(r, a->chan, CFSM_C_FAILED);
  if (!current) count(r, a->chan, CFSM_C_LATE);
}

/* The current step's attempt changed: done, waiting on, or on to the next
   step. Returns the channel started next (KK_CHAN_NONE), or LACKING. */
static int step_after(struct run *r, const struct cfsm_att *a, const struct cfsm_att *now,
                      int after, int failure, int64_t at) {
  struct cfsm_msg *m = &r->m;
  int n = m->nsteps;
  int wl = a->step < n ? m->steps[a->step].wait : 1;
  /* An SMS whose parts are all out is no longer due for the dispatcher. */
  if (a->chan == KK_CHAN_SMS && (after >= 1 || failure)) r->w_clear_due = 1;
  if (after >= wl) {
    cascade_done(r);
  } else if (!a->sent_at && now->sent_at && a->step < n && m->steps[a->step].timeout_ms > 0) {
    /* The wait starts when the provider has the message: time in kaskad's
       queue or in provider retries does not eat the step's window. */
    r->w_wait = 1;
    r->w_wait_until = wait_deadline(m, a->chan, at, m->steps[a->step].timeout_ms);
    note(r, CFSM_NOTE_WAIT, a->id, r->w_wait_until);
  } else if (failure) {
    if (a->step + 1 < n) count(r, a->chan, CFSM_C_FALLTHROUGH);
    /* Write what is pending first: the next step sets the row on its own. */
    if (r->w_clear_due) {
      fx(r, CFSM_FX_MSG_CLEAR_DUE);
      r->w_clear_due = 0;
    }
    return start_from(r, a->step + 1, at);
  }
  return KK_CHAN_NONE;
}

void cfsm_event(struct cfsm_msg *m, const struct cfsm_att *a, const struct cfsm_event *ev,
                struct cfsm_out *out) {
  struct run r;
  run_init(&r, m, out);
  int current = !m->done && m->attempt_id == a->id;
  int before = cfsm_level(a);
  int failure = failure_status(ev->status);
  struct cfsm_att now = *a;
  int64_t cost = 0;
  if (failure) {
    /* A failure after delivery or reading changes nothing we knew. */
    if (before >= 2 || failure_status(a->status) || a->status == KK_ST_SKIPPED) return;
    now.status = ev->status;
    /* Not billed: the attempt (and so its message) costs nothing after all. */
    if (ev->unbilled && a->sent_at) cost = -ev->charged;
  } else {
    int rank = kk_status_rank(ev->status);
    if (rank == 0) return;
    if (!now.sent_at) {
      if (!ev->price_known) {
        lacks(&r, CFSM_NEED_PRICE, 0);
        return;
      }
      now.sent_at = ev->at;
      cost = ev->price * (ev->units > 0 ? ev->units : 1);
    }
    if (rank == 2 && !now.delivered_at) now.delivered_at = ev->at;
    if (rank == 3 && !now.read_at) now.read_at = ev->at;
    /* The attempt's status moves forward only; a late one overwrites
       "timeout" so the report shows what finally happened. */
    if (rank > kk_status_rank(a->status)) now.status = ev->status;
  }
  int after = cfsm_level(&now);
  if (now.status == a->status && after == before && cost == 0 &&
      now.delivered_at == a->delivered_at && now.read_at == a->read_at && !ev->force_write)
    return;                   /* a repeated status */
  /* Did a second channel also reach the person? (The first step that is
     still current has no earlier attempt that could have.) */
  int twice = after >= 2 && before < 2 && !(current && a->step == 0);
  if ((twice || after < before) && m->natt < 0) {
    lacks(&r, CFSM_NEED_ATTEMPTS, 0);
    return;
  }
  struct cfsm_fx *f = fx(&r, CFSM_FX_ATT_SET);
  f->attempt_id = a->id;
  f->chan = a->chan;
  f->status = now.status;
  f->t0 = now.sent_at;
  f->t1 = now.delivered_at;
  f->t2 = now.read_at;
  f->cost = cost;
  f->refund = failure && ev->unbilled && a->sent_at != 0;
  f->step = a->step;
  int attempt_changed = now.status != a->status;
  if (attempt_changed) count_change(&r, a, before, after, failure, current);
  if (twice && others_delivered(&r.m, a) > 0) {
    r.m.delivered_twice++;
    count(&r, a->chan, CFSM_C_TWICE);
  }
  int next = KK_CHAN_NONE;
  if (current) next = step_after(&r, a, &now, after, failure, ev->at);
  if (next == LACKING) {
    run_end(&r, m);
    return;
  }
  struct change c = {.attempt_id = a->id,
                     .chan = next != KK_CHAN_NONE ? (enum kk_chan)next : a->chan,
                     .level = after,
                     .cost = cost,
                     .end_status = failure ? ev->status : KK_ST_FAILED,
                     .error = failure ? ev->error : NULL,
                     .lowered = after < before,
                     .changed = &now};
  refresh(&r, ev->at, &c);
  if (!r.out->need && attempt_changed && !r.event_recorded) {
    /* The trace: the attempt's own change, unless the message's event (same
       attempt) already tells it. */
    f = fx(&r, CFSM_FX_TRACE);
    f->attempt_id = a->id;
    f->chan = a->chan;
    f->status = now.status;
    f->t0 = ev->at;
    f->error = ev->error && ev->error[0] ? ev->error : NULL;
  }
  run_end(&r, m);
}

void cfsm_deadline(struct cfsm_msg *m, const struct cfsm_att *a, int step, int64_t at,
                   struct cfsm_out *out) {
  struct run r;
  run_init(&r, m, out);
  if (m->done || m->step != step) return;
  /* At the end of the validity the cascade ends here: no later step starts. */
  int expired = m->expires_at > 0 && at >= m->expires_at;
  enum kk_chan achan = a ? a->chan : KK_CHAN_NONE;
  int64_t current = m->attempt_id;
  if (a && !expired && a->chan != KK_CHAN_SMS && a->status == KK_ST_SENDING && a->tries == 0) {
    /* Not tried yet: it waits in kaskad's own send queue (a backlog). The
       step's time runs from the provider's answer, so the deadline moves on
       rather than a backlog turning into needless sends on the next
       channels. A provider that answers "later" (tries > 0) or not at all
       (the request's timeout counts as a try) still times the step out. */
    int64_t ms = step < m->nsteps ? m->steps[step].timeout_ms : 0;
    if (ms > 0) {
      int64_t until = wait_deadline(m, a->chan, at, ms);
      fx(&r, CFSM_FX_MSG_WAIT)->t0 = until;
      note(&r, CFSM_NOTE_WAIT, current, until);
      run_end(&r, m);
      return;
    }
  }
  if (a && (a->status == KK_ST_SENDING || a->status == KK_ST_SENT ||
            a->status == KK_ST_DELIVERED)) {
    /* "timeout" says the step passed on, "expired" that the validity ended
       during it; the timestamps keep what it reached. */
    enum kk_status end = expired ? KK_ST_EXPIRED : KK_ST_TIMEOUT;
    struct cfsm_fx *f = fx(&r, CFSM_FX_ATT_SET);
    f->attempt_id = current;
    f->chan = a->chan;
    f->status = end;
    f->t0 = a->sent_at;
    f->t1 = a->delivered_at;
    f->t2 = a->read_at;
    f->step = a->step;
    f = fx(&r, CFSM_FX_TRACE);
    f->attempt_id = current;
    f->chan = a->chan;
    f->status = end;
    f->t0 = at;
    count(&r, a->chan, CFSM_C_TIMEOUT);
    if (!expired) count(&r, a->chan, CFSM_C_FALLTHROUGH);
  }
  if (achan == KK_CHAN_SMS) {
    fx(&r, CFSM_FX_MSG_CLEAR_DUE);
    note(&r, CFSM_NOTE_SMS_CANCEL, current, at);
  }
  int next = KK_CHAN_NONE;
  if (expired)
    cascade_done(&r);
  else
    next = start_from(&r, step + 1, at);
  if (next == LACKING) {
    run_end(&r, m);
    return;
  }
  struct change c = {.attempt_id = next != KK_CHAN_NONE ? CFSM_NEW_ATT : current,
                     .chan = next != KK_CHAN_NONE ? (enum kk_chan)next : achan,
                     .end_status = expired ? KK_ST_EXPIRED : KK_ST_FAILED,
                     .expired = expired,
                     .error = expired ? "the validity ended before a step reached what it "
                                        "waited for"
                                      : "no step reached what it waited for in time"};
  refresh(&r, at, &c);
  run_end(&r, m);
}
