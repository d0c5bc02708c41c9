/*
 * store_notes.c - what a commit hands out: notes made by the writer during
 * a batch, moved to the loop once the batch has committed (dropped when it
 * did not), and delivered there to every subscriber before the done
 * callbacks of the batch's operations run.
 *
 * A note is small and self-contained: the new SMS's row the writer already
 * had in hand, a changed setting's new value. So whoever holds a cache of
 * it applies the change without reading the store again, and a change made
 * elsewhere could reach it the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_cache.h"
#include "store/store_int.h"

/* Writer thread: appends a note to the current batch's and returns it. */
static struct store_note *note_add(struct store *s, enum store_note_kind kind) {
  if (s->nw == s->capw) {
    s->capw = s->capw ? 2 * s->capw : 64;
    s->wnotes = kk_xrealloc(s->wnotes, (size_t)s->capw * sizeof *s->wnotes);
  }
  struct store_note *t = &s->wnotes[s->nw++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  return t;
}

void note(struct store *s, enum store_note_kind kind, int64_t msg_id, int64_t attempt_id,
          int64_t at) {
  struct store_note *t = note_add(s, kind);
  t->msg_id = msg_id;
  t->attempt_id = attempt_id;
  t->at = at;
}

void note_due(struct store *s, struct store_due *due) {
  struct store_note *t = note_add(s, STORE_NOTE_SMS_NEW);
  t->msg_id = due->id;
  t->attempt_id = due->attempt_id;
  t->at = due->due_at;
  t->account_id = due->account_id;
  t->due = due;
}

void note_cfg(struct store *s, enum store_note_kind kind, int64_t account_id, const char *name,
              const char *text, const uint8_t *hash, int64_t at) {
  struct store_note *t = note_add(s, kind);
  t->account_id = account_id;
  t->at = at;
  /* Freed with the note (notes_free). */
  struct store_note_cfg *c = kk_xcalloc(1, sizeof *c);
  if (name) snprintf(c->name, sizeof c->name, "%s", name);
  c->text = text ? kk_xstrdup(text) : NULL;
  if (hash) memcpy(c->hash, hash, sizeof c->hash);
  t->cfg = c;
}

void note_account(struct store *s, const struct store_account *a) {
  struct store_note *t = note_add(s, STORE_NOTE_ACCOUNT);
  t->account_id = a->id;
  t->at = a->suspended;
  /* Freed with the note (notes_free). */
  t->acc = kk_xmalloc(sizeof *t->acc);
  *t->acc = *a;
}

void notes_free(struct store_note *notes, int n) {
  for (int i = 0; i < n; i++) {
    if (notes[i].due) {
      free(notes[i].due->text);
      free(notes[i].due);
    }
    if (notes[i].cfg) {
      free(notes[i].cfg->text);
      free(notes[i].cfg);
    }
    free(notes[i].acc);
    if (notes[i].chan) {
      store_chan_due_free(notes[i].chan);
      free(notes[i].chan);
    }
  }
}

void notes_truncate(struct store *s, int n) {
  if (n >= s->nw) return;
  notes_free(s->wnotes + n, s->nw - n);
  s->nw = n;
}

void notes_commit(struct store *s, int ok) {
  if (!ok || s->nw == 0) {
    notes_truncate(s, 0);
    return;
  }
  pthread_mutex_lock(&s->mu);
  if (s->nl + s->nw > s->capl) {
    s->capl = s->nl + s->nw + 64;
    s->lnotes = kk_xrealloc(s->lnotes, (size_t)s->capl * sizeof *s->lnotes);
  }
  memcpy(s->lnotes + s->nl, s->wnotes, (size_t)s->nw * sizeof *s->wnotes);
  s->nl += s->nw;
  pthread_mutex_unlock(&s->mu);
  s->nw = 0;
}

struct store_note *notes_take(struct store *s, int *n) {
  struct store_note *notes = s->lnotes;
  *n = s->nl;
  s->lnotes = NULL;
  s->nl = s->capl = 0;
  return notes;
}

void notes_deliver(struct store *s, struct store_note *notes, int n) {
  /* What the store holds in memory changes first: the subscribers and the
     done callbacks read it. */
  if (n > 0) store_cache_apply(s, notes, n);
  if (n > 0) store_tpls_apply(s, notes, n);
  if (n > 0) store_optout_apply(s, notes, n);
  if (n > 0)
    for (int i = 0; i < s->nsubs; i++) s->subs[i].fn(s->subs[i].ud, notes, n);
  notes_free(notes, n);
  free(notes);
}

int store_subscribe(struct store *s, store_note_fn fn, void *ud) {
  if (s->nsubs == STORE_MAX_SUBSCRIBERS) return KK_ENOSPC;
  s->subs[s->nsubs++] = (struct store_sub){fn, ud};
  return 0;
}

void store_unsubscribe(struct store *s, store_note_fn fn, void *ud) {
  for (int i = 0; i < s->nsubs; i++)
    if ((fn == NULL || s->subs[i].fn == fn) && s->subs[i].ud == ud) {
      memmove(&s->subs[i], &s->subs[i + 1], (size_t)(s->nsubs - i - 1) * sizeof s->subs[0]);
      s->nsubs--;
      i--;
    }
}
