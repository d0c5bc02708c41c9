/*
 * phone_plan.c - the numbering-plan register: parse once, binary-search per
 * number. See phone_plan.h.
 */
#include "phone/phone_plan.h"

#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"

#define LOGCTX "numbering"
#define PLAN_FIELDS_MAX 8
#define PLAN_FILE_MAX (256u << 20) /* the register is ~3 MiB */

struct plan_range {
  uint64_t lo, hi;  /* 10-digit national numbers: DEF * 10^7 + subscriber */
  uint32_t op;      /* index into ops */
  uint32_t terr;    /* index into terrs */
};

struct plan_op {
  char *inn;
  char *name;       /* the spelling with the most numbers */
  uint64_t name_cap;
};

/* A spelling of a holder's name and how many numbers it holds. */
struct plan_spelling {
  uint32_t op;
  char *name;
  uint64_t cap;
};

struct plan_terr {
  char *raw;        /* as the register writes it */
  char *region;     /* the subject: the last part of a `|` path */
  char *tz;         /* "" unknown */
  int off_min;
};

struct phone_plan {
  struct plan_range *r;
  size_t n, cap;
  struct plan_op *ops;
  size_t nops, capops;
  struct plan_spelling *sp;
  size_t nsp, capsp;
  struct plan_terr *terrs;
  size_t nterrs, capterrs;
};

/* A field of a line: [p, p + len). */
struct field {
  const char *p;
  size_t len;
};

/* Splits the line [p, end) at ';' into at most max fields, a field that
   starts with '"' running to its closing quote (RFC 4180; "" inside is
   kept as is, no field here needs it unescaped). Returns the number of
   fields, max + 1 when there are more. */
static int split(const char *p, const char *end, struct field *f, int max) {
  int n = 0;
  for (;;) {
    if (n == max) return max + 1;
    if (p < end && *p == '"') {
      const char *q = p + 1;
      while (q < end && !(*q == '"' && (q + 1 == end || q[1] != '"'))) q += (*q == '"') ? 2 : 1;
      f[n].p = p + 1;
      f[n].len = (size_t)((q < end ? q : end) - (p + 1));
      p = q < end ? q + 1 : end;
      while (p < end && *p != ';') p++;
    } else {
      const char *s = p;
      while (p < end && *p != ';') p++;
      f[n].p = s;
      f[n].len = (size_t)(p - s);
    }
    n++;
    if (p == end) return n;
    p++;  /* the ';' */
  }
}

static int digits(struct field f, size_t len, uint64_t *out) {
  if (f.len != len) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (f.p[i] < '0' || f.p[i] > '9') return 0;
    v = v * 10 + (uint64_t)(f.p[i] - '0');
  }
  *out = v;
  return 1;
}

/* The field without spaces around it, as a new string. Caller frees. */
static char *dup_field(struct field f) {
  while (f.len && (*f.p == ' ' || *f.p == '\t')) f.p++, f.len--;
  while (f.len && (f.p[f.len - 1] == ' ' || f.p[f.len - 1] == '\t')) f.len--;
  char *s = kk_xmalloc(f.len + 1);
  memcpy(s, f.p, f.len);
  s[f.len] = '\0';
  return s;
}

static int field_is(struct field f, const char *s) {
  return f.len == strlen(s) && memcmp(f.p, s, f.len) == 0;
}

#define GROW(arr, n, cap)                                                \
  do {                                                                   \
    if ((n) == (cap)) {                                                  \
      (cap) = (cap) ? (cap) * 2 : 64;                                    \
      (arr) = kk_xrealloc((arr), (cap) * sizeof *(arr));                 \
    }                                                                    \
  } while (0)

static uint32_t terr_of(struct phone_plan *p, struct field f) {
  for (size_t i = 0; i < p->nterrs; i++)
    if (field_is(f, p->terrs[i].raw)) return (uint32_t)i;
  GROW(p->terrs, p->nterrs, p->capterrs);
  struct plan_terr *t = &p->terrs[p->nterrs];
  t->raw = dup_field(f);
  const char *last = strrchr(t->raw, '|');
  t->region = kk_xstrdup(last ? last + 1 : t->raw);
  if (strcmp(t->region, "Российская Федерация") == 0) t->region[0] = '\0';
  t->tz = kk_xstrdup("");
  t->off_min = 0;
  return (uint32_t)p->nterrs++;
}

/* The holder of inn (name when the register gives no INN), counting cap
   numbers for the spelling name. */
static uint32_t op_of(struct phone_plan *p, struct field inn, struct field name, uint64_t cap) {
  struct field key = inn.len ? inn : name;
  uint32_t op = UINT32_MAX;
  for (size_t i = p->nops; i-- > 0;)
    if (field_is(key, p->ops[i].inn)) { op = (uint32_t)i; break; }
  if (op == UINT32_MAX) {
    GROW(p->ops, p->nops, p->capops);
    p->ops[p->nops] = (struct plan_op){.inn = dup_field(key), .name = NULL};
    op = (uint32_t)p->nops++;
  }
  char *s = dup_field(name);
  struct plan_spelling *sp = NULL;
  for (size_t i = 0; i < p->nsp && sp == NULL; i++)
    if (p->sp[i].op == op && strcmp(p->sp[i].name, s) == 0) sp = &p->sp[i];
  if (sp) {
    free(s);
  } else {
    GROW(p->sp, p->nsp, p->capsp);
    sp = &p->sp[p->nsp++];
    *sp = (struct plan_spelling){.op = op, .name = s, .cap = 0};
  }
  sp->cap += cap;
  struct plan_op *o = &p->ops[op];
  if (o->name == NULL || sp->cap > o->name_cap) {
    o->name = sp->name;  /* owned by the spelling */
    o->name_cap = sp->cap;
  }
  return op;
}

/* "+7", "-1", "+5:45" -> minutes; 0 on success. */
static int parse_offset(struct field f, int *out) {
  if (f.len < 2 || (f.p[0] != '+' && f.p[0] != '-')) return KK_EINVAL;
  int h = 0, m = 0;
  size_t i = 1;
  for (; i < f.len && i < 3 && f.p[i] >= '0' && f.p[i] <= '9'; i++) h = h * 10 + (f.p[i] - '0');
  if (i == 1 || h > 14) return KK_EINVAL;
  if (i < f.len) {
    if (f.p[i] != ':' || f.len != i + 3) return KK_EINVAL;
    for (i++; i < f.len; i++) {
      if (f.p[i] < '0' || f.p[i] > '9') return KK_EINVAL;
      m = m * 10 + (f.p[i] - '0');
    }
    if (m > 59) return KK_EINVAL;
  }
  *out = (f.p[0] == '-' ? -1 : 1) * (h * 60 + m);
  return 0;
}

/* Calls fn for each line of [text, text + len) without its line end. */
static void each_line(const char *text, size_t len, void (*fn)(void *, const char *, const char *),
                      void *arg) {
  const char *p = text, *end = text + len;
  if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    const char *le = (e > p && e[-1] == '\r') ? e - 1 : e;
    fn(arg, p, le);
    p = nl ? nl + 1 : end;
  }
}

struct parse_ctx {
  struct phone_plan *p;
  int skipped;
  int line;
};

static void def_line(void *arg, const char *s, const char *e) {
  struct parse_ctx *c = arg;
  c->line++;
  if (s == e) return;
  struct field f[PLAN_FIELDS_MAX];
  uint64_t def, from, to;
  if (split(s, e, f, PLAN_FIELDS_MAX) != PLAN_FIELDS_MAX || !digits(f[0], 3, &def) ||
      def < 900 || !digits(f[1], 7, &from) || !digits(f[2], 7, &to) || from > to ||
      f[4].len == 0) {
    if (c->line > 1) c->skipped++;  /* the first line is the header */
    return;
  }
  struct phone_plan *p = c->p;
  GROW(p->r, p->n, p->cap);
  struct plan_range *r = &p->r[p->n++];
  r->lo = def * 10000000u + from;
  r->hi = def * 10000000u + to;
  r->op = op_of(p, f[7], f[4], to - from + 1);
  r->terr = terr_of(p, f[6]);
}

static void tz_line(void *arg, const char *s, const char *e) {
  struct parse_ctx *c = arg;
  c->line++;
  struct field f[6];
  int n = split(s, e, f, 6);
  int off;
  if (n < 3 || n > 6 || f[1].len == 0 || f[1].len > 64 || parse_offset(f[2], &off) != 0) return;
  struct phone_plan *p = c->p;
  for (size_t i = 0; i < p->nterrs; i++) {
    if (!field_is(f[0], p->terrs[i].raw)) continue;
    free(p->terrs[i].tz);
    p->terrs[i].tz = dup_field(f[1]);
    p->terrs[i].off_min = off;
  }
}

static int cmp_range(const void *a, const void *b) {
  const struct plan_range *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* text as UTF-8: itself when valid (*conv NULL), else converted from
   Windows-1251 into *conv (caller frees). KK_EUTF8 when neither. */
static int as_utf8(const char *text, size_t len, char **conv, size_t *conv_len) {
  *conv = NULL;
  if (kk_utf8_valid(text, len)) return 0;
  iconv_t cd = iconv_open("UTF-8", "WINDOWS-1251");
  if (cd == (iconv_t)-1) return KK_EUTF8;
  size_t cap = len * 3 + 1, left_out = cap, left_in = len;
  char *out = kk_xmalloc(cap), *po = out;
  char *pi = (char *)text;
  size_t r = iconv(cd, &pi, &left_in, &po, &left_out);
  iconv_close(cd);
  if (r == (size_t)-1 || left_in != 0) {
    free(out);
    return KK_EUTF8;
  }
  *conv = out;
  *conv_len = cap - left_out;
  return 0;
}

int phone_plan_parse(const char *def, size_t len, const char *tz, size_t tz_len,
                     struct phone_plan **out, int *skipped) {
  *out = NULL;
  if (skipped) *skipped = 0;
  char *conv, *tconv;
  size_t clen = 0, tclen = 0;
  if (as_utf8(def, len, &conv, &clen) != 0) return KK_EUTF8;
  if (as_utf8(tz, tz_len, &tconv, &tclen) != 0) {
    free(conv);
    return KK_EUTF8;
  }
  struct phone_plan *p = kk_xcalloc(1, sizeof *p);
  struct parse_ctx c = {.p = p};
  each_line(conv ? conv : def, conv ? clen : len, def_line, &c);
  c.line = 0;
  each_line(tconv ? tconv : tz, tconv ? tclen : tz_len, tz_line, &c);
  free(conv);
  free(tconv);
  /* Sorted by first number; a range overlapping the one before is dropped. */
  if (p->n) qsort(p->r, p->n, sizeof *p->r, cmp_range);
  size_t k = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (k > 0 && p->r[i].lo <= p->r[k - 1].hi) {
      c.skipped++;
      continue;
    }
    p->r[k++] = p->r[i];
  }
  p->n = k;
  if (skipped) *skipped = c.skipped;
  if (p->n == 0) {
    phone_plan_free(p);
    return KK_EINVAL;
  }
  *out = p;
  return 0;
}

/* Reads path whole into a malloc'd buffer; KK_EIO or KK_ETOOBIG. */
static int read_file(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return KK_EIO;
  size_t cap = 1 << 16, n = 0;
  char *buf = kk_xmalloc(cap);
  for (;;) {
    if (n == cap) {
      if (cap >= PLAN_FILE_MAX) {
        fclose(f);
        free(buf);
        return KK_ETOOBIG;
      }
      cap *= 2;
      buf = kk_xrealloc(buf, cap);
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    if (r == 0) break;
    n += r;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return KK_EIO;
  }
  *out = buf;
  *len = n;
  return 0;
}

int phone_plan_open(const char *dir, struct phone_plan **out) {
  *out = NULL;
  char path[4096];
  char *def = NULL, *tz = NULL;
  size_t len = 0, tz_len = 0;
  snprintf(path, sizeof path, "%s/DEF-9xx.csv", dir);
  int rc = read_file(path, &def, &len);
  if (rc != 0) {
    kk_error(LOGCTX, "cannot read %s: %s", path, kk_strerror(rc));
    return KK_EIO;
  }
  snprintf(path, sizeof path, "%s/region_tz.csv", dir);
  if (read_file(path, &tz, &tz_len) != 0) {
    kk_warnx(LOGCTX, "cannot read %s: numbers get no time zone", path);
    tz = NULL;
    tz_len = 0;
  }
  int skipped = 0;
  rc = phone_plan_parse(def, len, tz ? tz : "", tz_len, out, &skipped);
  free(def);
  free(tz);
  if (rc != 0) {
    kk_error(LOGCTX, "%s/DEF-9xx.csv: %s", dir,
             rc == KK_EUTF8 ? "neither UTF-8 nor Windows-1251" : "no number range in it");
    return rc;
  }
  size_t zoned = 0;
  for (size_t i = 0; i < (*out)->nterrs; i++) zoned += (*out)->terrs[i].tz[0] != '\0';
  kk_info(LOGCTX, "%zu ranges of %zu holders, %zu of %zu regions with a time zone%s", (*out)->n,
          (*out)->nops, zoned, (*out)->nterrs, skipped ? " (some rows skipped)" : "");
  if (skipped) kk_warnx(LOGCTX, "%s/DEF-9xx.csv: %d rows skipped (not a range)", dir, skipped);
  return 0;
}

void phone_plan_free(struct phone_plan *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->nops; i++) free(p->ops[i].inn);
  for (size_t i = 0; i < p->nsp; i++) free(p->sp[i].name);
  for (size_t i = 0; i < p->nterrs; i++) {
    free(p->terrs[i].raw);
    free(p->terrs[i].region);
    free(p->terrs[i].tz);
  }
  free(p->r);
  free(p->ops);
  free(p->sp);
  free(p->terrs);
  free(p);
}

int phone_plan_lookup(const struct phone_plan *p, const char *e164, struct phone_plan_info *out) {
  if (p == NULL || e164 == NULL || e164[0] != '7' || strlen(e164) != 11) return KK_ENOENT;
  uint64_t n = 0;
  for (int i = 1; i < 11; i++) {
    if (e164[i] < '0' || e164[i] > '9') return KK_ENOENT;
    n = n * 10 + (uint64_t)(e164[i] - '0');
  }
  size_t lo = 0, hi = p->n;  /* the last range with r.lo <= n */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (p->r[mid].lo <= n)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || n > p->r[lo - 1].hi) return KK_ENOENT;
  const struct plan_range *r = &p->r[lo - 1];
  const struct plan_terr *t = &p->terrs[r->terr];
  out->operator_name = p->ops[r->op].name;
  out->inn = p->ops[r->op].inn;
  out->region = t->region;
  out->timezone = t->tz;
  out->utc_offset_min = t->off_min;
  return 0;
}

size_t phone_plan_size(const struct phone_plan *p) { return p ? p->n : 0; }
