/*
 * contact_csv.c - a contact base from CSV. See contact_csv.h.
 *
 * The bytes are cut into physical lines here (converted from Windows-1251
 * first when the file is not UTF-8); each line is handed to libcsv, which
 * splits fields and keeps a quoted field open across lines. The raw text
 * of the row under way is kept, so that a refused row can be shown as it
 * was, and so that a quote that is never closed can be undone: its first
 * line is refused and the lines after it are read again.
 */
#include "contact/contact_csv.h"

#include <csv.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_tz.h"
#include "core/kk_utf8.h"
#include "phone/phone.h"

#define DETECT_BYTES (64u << 10)  /* bytes looked at to tell UTF-8 from Windows-1251 */
#define CSV_OPTS (CSV_STRICT | CSV_STRICT_FINI)

/* A growing byte buffer. */
struct bytes {
  char *p;
  size_t n, cap;
};

static void bytes_add(struct bytes *b, const char *p, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = b->cap ? b->cap : 256;
    while (b->n + n + 1 > b->cap) b->cap *= 2;
    b->p = kk_xrealloc(b->p, b->cap);
  }
  if (n) memcpy(b->p + b->n, p, n);
  b->n += n;
  b->p[b->n] = '\0';
}

/* What a column holds. */
enum col {
  COL_SKIP, COL_ATTR, COL_PHONE, COL_NAME, COL_EMAIL, COL_TIMEZONE, COL_VK_ID,
  COL_TELEGRAM_CHAT_ID, COL_VIBER_ID, COL_LISTS, COL_CONSENT, COL_CONSENT_SOURCE, COL_CONSENT_AT,
};

static const char *const col_names[] = {
    [COL_PHONE] = "phone", [COL_NAME] = "name", [COL_EMAIL] = "email",
    [COL_TIMEZONE] = "timezone", [COL_VK_ID] = "vk_id",
    [COL_TELEGRAM_CHAT_ID] = "telegram_chat_id", [COL_VIBER_ID] = "viber_id",
    [COL_LISTS] = "lists", [COL_CONSENT] = "consent", [COL_CONSENT_SOURCE] = "consent_source",
    [COL_CONSENT_AT] = "consent_at",
};

enum { ST_DETECT, ST_HEADER, ST_ROWS, ST_FAILED };

#define TZ_SEEN 8   /* time zones whose check a reader keeps */

struct contact_csv {
  struct contact_csv_opts o;
  int state;
  char err[160];
  enum contact_csv_encoding enc;
  char sep;
  iconv_t cd;                 /* Windows-1251 -> UTF-8, when enc says so */
  struct bytes head;          /* ST_DETECT: the first bytes */
  struct bytes line;          /* the physical line being assembled */
  struct bytes conv;          /* converted bytes of one feed */
  struct bytes raw;           /* the row under way, its lines with their '\n' */
  int raw_lines;
  long row_line;              /* its first line */
  long lineno;                /* physical lines read */
  struct bytes replay;        /* lines to read again after a broken quote */
  size_t replay_pos;
  struct csv_parser p;
  /* fields of the row under way: NUL-terminated, one after another in fb */
  struct bytes fb;
  size_t foff[CONTACT_CSV_COLS_MAX + 1];
  int nf;
  int too_many;               /* the row has more fields than foff holds */
  int line_long;              /* the line being assembled is over CONTACT_CSV_ROW_MAX */
  int row_ended;              /* libcsv ended a row during the last parse */
  /* header */
  int ncols;
  enum col cols[CONTACT_CSV_COLS_MAX];
  char *names[CONTACT_CSV_COLS_MAX];  /* attribute names */
  long rows;
  uint64_t offset;
  /* the time zones checked last, and their answers: a file names a few
     zones over and over, and a check opens the zone */
  struct tz_seen { char name[48]; int ok; } tz_seen[TZ_SEEN];
  int tz_next;
};

/* ---- rows -------------------------------------------------------------------------- */

static void reject(struct contact_csv *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(struct contact_csv *c, const char *reason, const char *fmt, ...) {
  char detail[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  size_t n = c->raw.n;
  while (n && (c->raw.p[n - 1] == '\n' || c->raw.p[n - 1] == '\r')) n--;
  struct contact_csv_reject r = {.line = c->row_line, .reason = reason, .detail = detail,
                                 .raw = c->raw.p ? c->raw.p : "", .raw_len = n};
  c->rows++;
  if (c->o.reject) c->o.reject(c->o.arg, &r);
}

/* The field without spaces around it, NUL-terminated in place; NULL when
   empty. */
static char *trimmed(struct contact_csv *c, int i) {
  char *s = c->fb.p + c->foff[i];
  char *e = s + strlen(s);
  while (*s == ' ' || *s == '\t') s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
  *e = '\0';
  return *s ? s : NULL;
}

static int consent_of(const char *s) {
  static const char *const yes[] = {"yes", "y", "1", "true", "да", "Да", "ДА"};
  static const char *const no[] = {"no", "n", "0", "false", "нет", "Нет", "НЕТ"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (strcasecmp(s, yes[i]) == 0) return 1;
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (strcasecmp(s, no[i]) == 0) return 0;
  return -1;
}

/* 1 when name is a time zone (the options' check, else the tz database's),
   the last TZ_SEEN answers kept. */
static int tz_valid(struct contact_csv *c, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < TZ_SEEN && n < sizeof c->tz_seen[0].name; i++)
    if (memcmp(c->tz_seen[i].name, name, n + 1) == 0) return c->tz_seen[i].ok;
  int ok = c->o.tz_valid ? c->o.tz_valid(c->o.arg, name) : kk_tz_valid(name);
  if (n > 0 && n < sizeof c->tz_seen[0].name) {
    struct tz_seen *t = &c->tz_seen[c->tz_next];
    memcpy(t->name, name, n + 1);
    t->ok = ok;
    c->tz_next = (c->tz_next + 1) % TZ_SEEN;
  }
  return ok;
}

static void row_done(struct contact_csv *c) {
  if (c->too_many || c->nf != c->ncols) {
    reject(c, "wrong_column_count", "%s%d fields, the header has %d", c->too_many ? "over " : "",
           c->nf, c->ncols);
    return;
  }
  struct contact_csv_row r;
  memset(&r, 0, sizeof r);
  r.line = c->row_line;
  r.consent = -1;
  const char *phone = NULL;
  for (int i = 0; i < c->nf; i++) {
    const char *raw_f = c->fb.p + c->foff[i];
    if (!kk_utf8_valid(raw_f, strlen(raw_f))) {
      reject(c, "not_utf8", "field %d is not UTF-8", i + 1);
      return;
    }
    char *v = trimmed(c, i);
    if (v == NULL || c->cols[i] == COL_SKIP) continue;
    if (strlen(v) > CONTACT_CSV_VALUE_MAX) {
      reject(c, "value_too_long", "%s is over %d bytes",
             c->cols[i] == COL_ATTR ? c->names[i] : col_names[c->cols[i]], CONTACT_CSV_VALUE_MAX);
      return;
    }
    switch (c->cols[i]) {
    case COL_PHONE: phone = v; break;
    case COL_NAME: r.name = v; break;
    case COL_EMAIL: r.email = v; break;
    case COL_TIMEZONE: r.timezone = v; break;
    case COL_VK_ID: r.vk_id = v; break;
    case COL_TELEGRAM_CHAT_ID: r.telegram_chat_id = v; break;
    case COL_VIBER_ID: r.viber_id = v; break;
    case COL_CONSENT_SOURCE: r.consent_source = v; break;
    case COL_CONSENT:
      if ((r.consent = consent_of(v)) < 0) {
        reject(c, "invalid_consent", "consent is yes or no, not \"%.40s\"", v);
        return;
      }
      break;
    case COL_CONSENT_AT:
      if (contact_csv_parse_time(v, &r.consent_at) != 0) {
        reject(c, "invalid_consent_at", "consent_at \"%.40s\" is not a date", v);
        return;
      }
      break;
    case COL_LISTS:
      for (char *tok = v, *next; tok; tok = next) {
        next = strchr(tok, '|');
        if (next) *next++ = '\0';
        char *e = tok + strlen(tok);
        while (*tok == ' ') tok++;
        while (e > tok && e[-1] == ' ') *--e = '\0';
        if (*tok == '\0') continue;
        if (r.nlists == CONTACT_CSV_LISTS_MAX || strlen(tok) > 64) {
          reject(c, "too_many_lists", "at most %d lists of up to 64 bytes", CONTACT_CSV_LISTS_MAX);
          return;
        }
        r.lists[r.nlists++] = tok;
      }
      break;
    case COL_ATTR:
      r.attr_name[r.nattrs] = c->names[i];
      r.attr_value[r.nattrs++] = v;
      break;
    case COL_SKIP: break;
    }
  }
  if (phone == NULL) {
    reject(c, "no_phone", "the phone is empty");
    return;
  }
  if (phone_normalize(phone, r.phone, sizeof r.phone) != 0) {
    reject(c, "invalid_phone", "\"%.40s\" is not a phone number", phone);
    return;
  }
  if (r.timezone && !tz_valid(c, r.timezone)) {
    reject(c, "invalid_timezone", "\"%.40s\" is not a time zone (e.g. Europe/Moscow)", r.timezone);
    return;
  }
  c->rows++;
  if (c->o.row) c->o.row(c->o.arg, &r);
}

/* ---- libcsv callbacks ------------------------------------------------------------ */

static void on_field(void *s, size_t len, void *arg) {
  struct contact_csv *c = arg;
  if (c->nf == CONTACT_CSV_COLS_MAX) {
    c->too_many = 1;
    return;
  }
  c->foff[c->nf++] = c->fb.n;
  bytes_add(&c->fb, s ? s : "", s ? len : 0);
  bytes_add(&c->fb, "", 1);  /* its NUL: the next field starts after it */
}

static void on_row(int term, void *arg) {
  struct contact_csv *c = arg;
  c->row_ended = 1;
  if (c->state == ST_HEADER) return;  /* header_done reads the fields */
  if (c->state == ST_ROWS) row_done(c);
  c->fb.n = 0;
  c->nf = 0;
  c->too_many = 0;
}

/* ---- the header ------------------------------------------------------------------ */

static int fail(struct contact_csv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct contact_csv *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  c->state = ST_FAILED;
  return KK_EINVAL;
}

static char detect_sep(const char *s, size_t n) {
  size_t semi = 0, comma = 0;
  int q = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') q = !q;
    else if (!q && s[i] == ';') semi++;
    else if (!q && s[i] == ',') comma++;
  }
  return semi > comma ? ';' : ',';
}

/* An attribute's name: ASCII lower case, other ASCII punctuation and spaces
   as '_'; NULL when nothing is left. */
static char *attr_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= CONTACT_CSV_NAME_MAX) return NULL;
  char *out = kk_xstrdup(s);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)out[i];
    if (ch >= 'A' && ch <= 'Z') out[i] = (char)(ch + 32);
    else if (!(ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) out[i] = '_';
  }
  return out;
}

static int header_done(struct contact_csv *c) {
  if (c->too_many) return fail(c, "the header has more than %d columns", CONTACT_CSV_COLS_MAX);
  int phone = 0;
  c->ncols = c->nf;
  for (int i = 0; i < c->nf; i++) {
    char *v = trimmed(c, i);
    c->cols[i] = COL_SKIP;
    if (v == NULL) continue;  /* a column without a name (a trailing separator) */
    if (!kk_utf8_valid(v, strlen(v))) return fail(c, "column %d's name is not UTF-8", i + 1);
    char *name = attr_name(v);
    if (name == NULL) return fail(c, "column %d's name is over %d bytes", i + 1, CONTACT_CSV_NAME_MAX - 1);
    c->cols[i] = COL_ATTR;
    for (size_t k = COL_PHONE; k < sizeof col_names / sizeof col_names[0]; k++)
      if (strcmp(name, col_names[k]) == 0) c->cols[i] = (enum col)k;
    if (strcmp(name, "list") == 0) c->cols[i] = COL_LISTS;
    for (int k = 0; k < i; k++)
      if ((c->cols[i] != COL_ATTR && c->cols[k] == c->cols[i]) ||
          (c->cols[i] == COL_ATTR && c->cols[k] == COL_ATTR && strcmp(c->names[k], name) == 0)) {
        free(name);
        return fail(c, "the header names \"%.60s\" twice", v);
      }
    if (c->cols[i] == COL_ATTR)
      c->names[i] = name;
    else
      free(name);
    phone |= c->cols[i] == COL_PHONE;
  }
  if (!phone) return fail(c, "the header has no phone column (names: phone, name, email, ...)");
  c->state = ST_ROWS;
  return 0;
}

/* ---- lines ------------------------------------------------------------------------ */

/* Rows end at '\n' only (a line's '\r' is cut before libcsv sees it; a
   bare one inside a line is text). */
static int is_term(unsigned char ch) { return ch == '\n'; }

static void parser_init(struct contact_csv *c) {
  csv_init(&c->p, CSV_OPTS);
  csv_set_term_func(&c->p, is_term);
}

static void parser_reset(struct contact_csv *c) {
  csv_free(&c->p);
  parser_init(c);
  csv_set_delim(&c->p, (unsigned char)c->sep);
  c->fb.n = 0;
  c->nf = 0;
  c->too_many = 0;
  c->raw.n = 0;
  c->raw_lines = 0;
}

/* The row under way has a quote that is never closed: its first line is
   refused, the lines after it are read again. */
static void broken_quote(struct contact_csv *c, const char *why) {
  char *nl = memchr(c->raw.p, '\n', c->raw.n);
  size_t first = nl ? (size_t)(nl - c->raw.p) + 1 : c->raw.n;
  struct bytes again = {0};
  bytes_add(&again, c->raw.p + first, c->raw.n - first);
  bytes_add(&again, c->replay.p ? c->replay.p + c->replay_pos : "", c->replay.n - c->replay_pos);
  size_t keep = c->raw.n;
  c->raw.n = first;
  reject(c, "broken_quote", "%s", why);
  c->raw.n = keep;
  long line = c->row_line;
  parser_reset(c);
  free(c->replay.p);
  c->replay = again;
  c->replay_pos = 0;
  c->lineno = line;  /* the lines after the first are read again */
}

static int one_line(struct contact_csv *c, const char *s, size_t n) {
  c->lineno++;
  if (n && s[n - 1] == '\r') n--;
  if (c->state == ST_HEADER) {
    if (n == 0) return 0;
    c->sep = detect_sep(s, n);
    csv_set_delim(&c->p, (unsigned char)c->sep);
    c->row_ended = 0;
    if (csv_parse(&c->p, s, n, on_field, on_row, c) != n ||
        csv_fini(&c->p, on_field, on_row, c) != 0 || !c->row_ended)
      return fail(c, "the header line is not CSV (a stray quote?)");
    int rc = header_done(c);
    parser_reset(c);
    return rc;
  }
  if (c->raw_lines == 0) {
    if (n == 0) return 0;  /* empty lines between rows */
    c->row_line = c->lineno;
  }
  size_t at = c->raw.n;
  bytes_add(&c->raw, s, n);
  bytes_add(&c->raw, "\n", 1);
  c->raw_lines++;
  c->row_ended = 0;
  size_t len = c->raw.n - at;
  if (csv_parse(&c->p, c->raw.p + at, len, on_field, on_row, c) != len) {
    /* Strict libcsv: a quote inside an unquoted field or after a closing one. */
    reject(c, "broken_quote", "a quote inside a field or after its closing quote");
    parser_reset(c);
    return 0;
  }
  if (c->row_ended) {
    c->raw.n = 0;
    c->raw_lines = 0;
  } else if (c->raw.n > CONTACT_CSV_ROW_MAX || c->raw_lines > CONTACT_CSV_ROW_LINES) {
    broken_quote(c, "a quoted field is not closed");
  }
  return 0;
}

/* Reads the lines of the replay buffer (a broken quote's undone lines). */
static int replay(struct contact_csv *c) {
  while (c->replay_pos < c->replay.n) {
    const char *s = c->replay.p + c->replay_pos;
    size_t left = c->replay.n - c->replay_pos;
    const char *nl = memchr(s, '\n', left);
    size_t n = nl ? (size_t)(nl - s) : left;
    c->replay_pos += nl ? n + 1 : n;
    int rc = one_line(c, s, n);
    if (rc != 0) return rc;
  }
  c->replay.n = c->replay_pos = 0;
  return 0;
}

/* A line too long to be (part of) a row: refused, with the row under way. */
static void long_line(struct contact_csv *c) {
  if (c->raw_lines > 0) reject(c, "broken_quote", "a quoted field is not closed");
  parser_reset(c);
  c->lineno++;
  c->row_line = c->lineno;
  reject(c, "row_too_long", "a line over %u bytes", CONTACT_CSV_ROW_MAX);
}

/* Cuts UTF-8 bytes into lines. */
static int lines(struct contact_csv *c, const char *p, size_t n) {
  while (n) {
    const char *nl = memchr(p, '\n', n);
    size_t k = nl ? (size_t)(nl - p) : n;
    if (nl == NULL) {
      if (c->line.n + k > CONTACT_CSV_ROW_MAX) {
        c->line_long = 1;  /* read on to its end, keeping none of it */
        c->line.n = 0;
      }
      if (!c->line_long) bytes_add(&c->line, p, k);
      return 0;
    }
    int rc = 0;
    if (c->line_long || c->line.n + k > CONTACT_CSV_ROW_MAX) {
      long_line(c);
      c->line_long = 0;
    } else if (c->line.n) {
      bytes_add(&c->line, p, k);
      rc = one_line(c, c->line.p, c->line.n);
    } else {
      rc = one_line(c, p, k);
    }
    c->line.n = 0;
    if (rc == 0) rc = replay(c);
    if (rc != 0) return rc;
    p += k + 1;
    n -= k + 1;
  }
  return 0;
}

/* Bytes in the file's encoding. */
static int take(struct contact_csv *c, const char *p, size_t n) {
  if (c->enc == CONTACT_CSV_UTF8) return lines(c, p, n);
  c->conv.n = 0;
  if (c->conv.cap < n * 3 + 1) {
    c->conv.cap = n * 3 + 1;
    c->conv.p = kk_xrealloc(c->conv.p, c->conv.cap);
  }
  char *in = (char *)p, *out = c->conv.p;
  size_t left_in = n, left_out = c->conv.cap;
  while (left_in) {
    if (iconv(c->cd, &in, &left_in, &out, &left_out) == (size_t)-1) {
      /* A byte Windows-1251 does not define (0x98): '?' */
      *out++ = '?';
      left_out--;
      in++;
      left_in--;
    }
  }
  return lines(c, c->conv.p, (size_t)(out - c->conv.p));
}

/* UTF-8 unless the first bytes say otherwise (a character cut at the end
   of them is not held against it). */
static void detect(struct contact_csv *c, int all) {
  const char *s = c->head.p ? c->head.p : "";
  size_t n = c->head.n;
  if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
    c->enc = CONTACT_CSV_UTF8;
  } else {
    size_t check = n;
    if (!all) {  /* the last character may go on in the next bytes */
      size_t i = n;
      while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
      if (i > 0 && (unsigned char)s[i - 1] >= 0xC0) check = i - 1;
    }
    c->enc = kk_utf8_valid(s, check) ? CONTACT_CSV_UTF8 : CONTACT_CSV_CP1251;
  }
  if (c->enc == CONTACT_CSV_CP1251) c->cd = iconv_open("UTF-8", "WINDOWS-1251");
  c->state = ST_HEADER;
}

static int start(struct contact_csv *c, int all) {
  detect(c, all);
  struct bytes h = c->head;
  c->head = (struct bytes){0};
  size_t skip = (h.n >= 3 && memcmp(h.p, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
  int rc = h.n > skip ? take(c, h.p + skip, h.n - skip) : 0;
  free(h.p);
  return rc;
}

/* ---- API ----------------------------------------------------------------------------- */

struct contact_csv *contact_csv_new(const struct contact_csv_opts *o) {
  struct contact_csv *c = kk_xcalloc(1, sizeof *c);
  c->o = *o;
  c->sep = ',';
  c->cd = (iconv_t)-1;
  parser_init(c);
  return c;
}

void contact_csv_free(struct contact_csv *c) {
  if (c == NULL) return;
  csv_free(&c->p);
  if (c->cd != (iconv_t)-1) iconv_close(c->cd);
  for (int i = 0; i < c->ncols; i++) free(c->names[i]);
  free(c->head.p);
  free(c->line.p);
  free(c->conv.p);
  free(c->raw.p);
  free(c->replay.p);
  free(c->fb.p);
  free(c);
}

int contact_csv_feed(struct contact_csv *c, const char *p, size_t n) {
  if (c->state == ST_FAILED) return KK_EINVAL;
  c->offset += n;
  if (c->state == ST_DETECT) {
    bytes_add(&c->head, p, n);
    if (c->head.n < DETECT_BYTES) return 0;
    return start(c, 0);
  }
  return take(c, p, n);
}

int contact_csv_end(struct contact_csv *c) {
  if (c->state == ST_FAILED) return KK_EINVAL;
  int rc = 0;
  if (c->state == ST_DETECT) rc = start(c, 1);
  if (rc == 0 && (c->line.n || c->line_long)) {
    /* The last line had no line end. */
    struct bytes last = c->line;
    c->line = (struct bytes){0};
    rc = lines(c, last.p, last.n);
    if (rc == 0) rc = lines(c, "\n", 1);
    free(last.p);
  }
  if (c->state == ST_HEADER) return fail(c, "the file has no header line");
  /* A quote still open at the end: undo it, as one that runs too long. */
  while (rc == 0 && c->raw_lines > 0) {
    broken_quote(c, "a quoted field is not closed");
    rc = replay(c);
  }
  if (rc == 0) csv_fini(&c->p, on_field, on_row, c);
  return c->state == ST_FAILED ? KK_EINVAL : rc;
}

const char *contact_csv_error(const struct contact_csv *c) { return c->err; }
char contact_csv_separator(const struct contact_csv *c) { return c->sep; }
enum contact_csv_encoding contact_csv_encoding(const struct contact_csv *c) { return c->enc; }
long contact_csv_rows(const struct contact_csv *c) { return c->rows; }
uint64_t contact_csv_offset(const struct contact_csv *c) { return c->offset; }

/* ---- dates ------------------------------------------------------------------------------- */

static int num(const char **p, int digits, int *out) {
  int v = 0;
  for (int i = 0; i < digits; i++) {
    if ((*p)[i] < '0' || (*p)[i] > '9') return 0;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += digits;
  *out = v;
  return 1;
}

int contact_csv_parse_time(const char *s, int64_t *ms) {
  const char *p = s;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (num(&p, 4, &y) && *p == '-') {
    p++;
    if (!num(&p, 2, &mo) || *p++ != '-' || !num(&p, 2, &d)) return KK_EINVAL;
  } else {
    p = s;
    if (!num(&p, 2, &d) || *p++ != '.' || !num(&p, 2, &mo) || *p++ != '.' || !num(&p, 4, &y))
      return KK_EINVAL;
  }
  if (*p == 'T' || *p == ' ') {
    p++;
    if (!num(&p, 2, &h) || *p++ != ':' || !num(&p, 2, &mi)) return KK_EINVAL;
    if (*p == ':') {
      p++;
      if (!num(&p, 2, &sec)) return KK_EINVAL;
      if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++) {}
    }
  }
  int off = 0;
  if (*p == 'Z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
    if (!num(&p, 2, &oh)) return KK_EINVAL;
    if (*p == ':') p++;
    if (*p && !num(&p, 2, &om)) return KK_EINVAL;
    off = sign * (oh * 60 + om);
  }
  if (*p != '\0' || y < 1970 || y > 2100 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
      mi > 59 || sec > 60)
    return KK_EINVAL;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                  .tm_min = mi, .tm_sec = sec};
  time_t t = timegm(&tm);
  if (tm.tm_mday != d) return KK_EINVAL;  /* 31.02 */
  *ms = ((int64_t)t - (int64_t)off * 60) * 1000;
  return 0;
}
