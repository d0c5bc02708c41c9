/*
 * pg_peer.c - what the nodes of one database tell each other about the
 * policy's state that each holds in memory: stop-list entries and consents
 * put or removed, and sends the frequency caps counted. A commit that made
 * such notes sends them with it as NOTIFY kaskad_pol, many to a payload
 * (lines "s ACCOUNT REASON PHONE", "c ACCOUNT MASK PHONE", "n ACCOUNT AT
 * PHONE CLASS"; a payload at most PG_PEER_PAYLOAD bytes, as many as it
 * takes); every other node's writer hears them at its next commit (at
 * once when idle: pg_node.c's listener wakes it) and hands them to its
 * loop as the same notes, marked remote.
 *
 * The lines carry the values themselves (a reason, a mask of consents, a
 * time), so applying one reads nothing from the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define LOGCTX "store"

/* The letter of a note kind that goes to the other nodes, or 0. */
static char peer_letter(enum store_note_kind k) {
  switch (k) {
  case STORE_NOTE_STOP: return 's';
  case STORE_NOTE_CONSENT: return 'c';
  case STORE_NOTE_CAP_SEND: return 'n';
  default: return 0;
  }
}

static int notify(struct store *s, const char *payload) {
  struct pg_params p = {0};
  pg_p_text(&p, payload);
  return pg_cmd(&PG(s)->w, "SELECT pg_notify('kaskad_pol',$1)", &p);
}

int pgp_send(struct store *s, int n) {
  char buf[PG_PEER_PAYLOAD + 1];
  size_t len = 0;
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &s->wnotes[i];
    char c = peer_letter(t->kind);
    if (c == 0 || t->remote || t->cfg == NULL) continue;
    char line[200];
    int l = snprintf(line, sizeof line, "%c %lld %lld %s%s%s\n", c, (long long)t->account_id,
                     (long long)t->at, t->cfg->name, t->cfg->text ? " " : "",
                     t->cfg->text ? t->cfg->text : "");
    if (l <= 0 || (size_t)l >= sizeof line) continue;
    if (len + (size_t)l > PG_PEER_PAYLOAD) {
      buf[len] = '\0';
      if (notify(s, buf) != 0) return KK_ESTORE;
      len = 0;
    }
    memcpy(buf + len, line, (size_t)l);
    len += (size_t)l;
  }
  if (len == 0) return 0;
  buf[len] = '\0';
  return notify(s, buf);
}

/* One line: its note, marked remote. Lines that do not parse are skipped. */
static void apply_line(struct store *s, const char *line, size_t len) {
  char buf[200];
  if (len >= sizeof buf) return;
  memcpy(buf, line, len);
  buf[len] = '\0';
  char c, phone[72], cls[24] = "";
  long long acc, at;
  int got = sscanf(buf, "%c %lld %lld %71s %23s", &c, &acc, &at, phone, cls);
  if (got < 4) return;
  enum store_note_kind kind;
  if (c == 's') kind = STORE_NOTE_STOP;
  else if (c == 'c') kind = STORE_NOTE_CONSENT;
  else if (c == 'n' && got == 5) kind = STORE_NOTE_CAP_SEND;
  else return;
  note_cfg(s, kind, acc, phone, kind == STORE_NOTE_CAP_SEND ? cls : NULL, NULL, at);
  s->wnotes[s->nw - 1].remote = 1;
}

void pgp_apply(struct store *s, const char *payload) {
  for (const char *p = payload; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    apply_line(s, p, len);
    p += len + (nl ? 1 : 0);
  }
}
