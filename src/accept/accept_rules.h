/*
 * accept_rules.h - the account's rules in the accept path (policy/
 * pol_rules): what the message's class may do, then prohibited content
 * (refused: prohibited_content), foreign messengers (their steps skipped:
 * foreign_messenger_forbidden), frequency caps (refused or deferred:
 * frequency_cap) and quiet hours (deferred: quiet_hours, status
 * `scheduled` until they end). Every refusal, deferral and skip is a
 * decision: its reason code goes in the refusal's error or in the stored
 * message's `decisions` (rule, outcome, reason, time), and counts in
 * /metrics per reason.
 *
 * The rules of every account are held in memory: loaded at start from the
 * store (the account's settings row "policy") and kept current by the
 * store's notes, so applying them does no I/O. Loop thread.
 */
#ifndef ACCEPT_RULES_H
#define ACCEPT_RULES_H

#include <stdint.h>

#include "policy/pol_content.h"
#include "policy/pol_rules.h"

struct accept;
struct accept_item;
struct store;
struct store_account;
struct phone_plan;
struct pol_caps;
struct kk_buf;
struct pol_due;

/* The name of the settings row that holds an account's policy document. */
#define ACCEPT_RULES_ROW "policy"

#define ACCEPT_REASONS(XX)                                       \
  XX(QUIET, "quiet_hours")                                       \
  XX(CAP, "frequency_cap")                                       \
  XX(CONTENT, "prohibited_content")                              \
  XX(FOREIGN, "foreign_messenger_forbidden")                     \
  XX(STOP, "stop_listed")                                        \
  XX(CONSENT, "no_consent")                                      \
  XX(WINDOW, "outside_window")                                   \
  XX(MISSING, "missing_variable")                                \
  XX(BALANCE, "insufficient_balance")                            \
  XX(ROAMING, "roaming")

enum accept_reason {
#define XX(c, s) ACCEPT_R_##c,
  ACCEPT_REASONS(XX)
#undef XX
  ACCEPT_R_COUNT
};

struct accept_rules_acct {
  int64_t account_id;
  struct pol_rules r;
  char *doc;                      /* the stored document (owned) */
};

#define ACCEPT_OWN_ZONES 65536   /* slots of accept_rules.own (4.5 MiB) */

struct accept_rules {
  struct store *store;
  const struct phone_plan *plan;  /* the register's zones; NULL: none */
  struct pol_caps *caps;
  struct accept_rules_acct *a;    /* sorted by account_id; owned */
  int n, cap;
  struct pol_rules defaults;      /* of an account that set none */
  struct pol_window quiet;        /* quiet hours of a policy that names none */
  uint64_t refused[ACCEPT_R_COUNT], deferred[ACCEPT_R_COUNT], skipped[ACCEPT_R_COUNT];
  uint64_t due_allowed, due_refused;   /* the rules again when due: let go, stopped */
  int off;                        /* 1: no rule applies */
  /* Zones' UTC offsets lately asked, each good for a few minutes: the
     quiet-hours question of most messages is arithmetic on it. */
  struct accept_zone {
    char name[64];
    int offset_min;
    int64_t until_ms;
  } zones[16];
  int zone_next;
  /* The content check's last verdicts: a campaign or a batch sends one text
     to many phones, and the text is normalised and matched once. A verdict
     holds for its account while no policy changes (gen). */
  struct accept_content_memo {
    int64_t account_id;
    uint64_t gen, hash;
    size_t len;
    char *text;                   /* owned copy; NULL: empty slot */
    int hit;
    struct pol_content_hit h;
  } memo[8];
  int memo_next;
  /* Messages lately seen when due, by the id: those an engine deferred for
     roaming (such a deferral comes back every half hour, and is recorded
     and counted once), and those refused for their content at a step whose
     engine gave the text (a later step of theirs is refused too). */
  struct accept_ids {
    int64_t id[64];
    int next;
  } engine_deferred, content_refused;
  /* Recipients' own zones (their contacts' explicit ones) lately met at
     accept, for the quiet hours when their messages come due: a table of
     ACCEPT_OWN_ZONES slots by (account, phone), the newest in its slot
     (owned; NULL until the first). One not kept, or lost with a restart,
     is the register's zone then. */
  struct accept_own_zone {
    int64_t account_id;
    char phone[16];
    char zone[48];
  } *own;
  uint64_t gen;                   /* bumped by every policy put */
  int caps_full_said;             /* a full caps' table was logged */
  int subscribed;
};

/* Loads every account's rules and follows the store's notes. quiet: the
   quiet hours of a policy that names none (setting quiet_hours; NULL: the
   built-in 21:00-09:00). 0 or KK_ESTORE. */
int accept_rules_init(struct accept_rules *ru, struct store *store, const struct phone_plan *plan,
                      const struct pol_window *quiet);
void accept_rules_fini(struct accept_rules *ru);

/* The rules of account_id (ru->defaults when it set none). */
const struct pol_rules *accept_rules_of(const struct accept_rules *ru, int64_t account_id);
/* Its stored document, or NULL. */
const char *accept_rules_doc(const struct accept_rules *ru, int64_t account_id);

/*
 * Applies the account's rules to a prepared message (it->m): may refuse it
 * (KK_EINVAL with it->err), drop foreign-messenger steps, or defer it
 * (it->m.not_before), each recorded in it->decisions. 0 when it may be
 * stored. now is the accept time.
 */
int accept_rules_apply(struct accept_rules *ru, const struct accept *ac,
                       const struct store_account *acc, struct accept_item *it, int64_t now);

/* Counts a refusal that accept_rules_apply did not decide (its code:
   stop_listed, no_consent, missing_variable, insufficient_balance) among
   the decisions; other codes are not counted. */
void accept_rules_count(struct accept_rules *ru, const char *code);
/* Counts n deferrals of reason code (outside_window: campaign recipients
   whose send window was closed when they were planned). */
void accept_rules_count_deferred(struct accept_rules *ru, const char *code, uint64_t n);

/*
 * The rules again when a message or a cascade step comes due (pol_due.h;
 * ud: the struct accept): the policy chain (the stop-list, the consent for
 * the step's channel), the frequency caps as they are now (over the cap:
 * more messages of its class than the cap allows within its window,
 * itself included), prohibited content for the classes checked for it
 * (when the engine gives the text) and foreign messengers (the step is
 * skipped: foreign_messenger_forbidden). NULL when it may go; else the
 * reason code, with the decision ({"at","rule","outcome":"refused" or
 * "skipped","reason","channel"}) appended to the message's decisions and
 * counted. A decision the engine took itself (d->decided: roaming) is
 * recorded and counted the same way, and its code returned.
 */
const char *accept_rules_due(void *ud, const struct pol_due *d);

/* The decisions counters in Prometheus text: per reason and outcome
   (refused, deferred, skipped; held: a cascade step that fell through in
   the quiet hours, counted by the store's cascade), and the checks when
   due. */
void accept_rules_metrics(const struct accept_rules *ru, struct kk_buf *o);

#endif
