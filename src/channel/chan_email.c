/*
 * chan_email.c - e-mail over SMTP (PROTOCOLS.md 6.1): the RFC 5322 message
 * (UTF-8 plain text, the subject and sender name as RFC 2047 base64 words)
 * with the envelope for libcurl, and the final SMTP reply's meaning. A 250
 * after DATA is all SMTP tells, so e-mail reports only "sent".
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"

#define SUBJECT_MAX_CHARS 60

/* user@domain: one '@' with something on both sides, no space, control
   character or angle bracket. */
static int address_ok(const char *a) {
  if (!chan_set(a)) return 0;
  const char *at = strchr(a, '@');
  if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@')) return 0;
  for (const unsigned char *p = (const unsigned char *)a; *p; p++)
    if (*p <= ' ' || *p == 0x7F || *p == '<' || *p == '>') return 0;
  return 1;
}

/* "=?UTF-8?B?<base64 of s>?=" appended to b. */
static int put_encoded_word(struct kk_buf *b, const char *s, size_t n) {
  if (n > CHAN_BODY_MAX / 2) return KK_ENOSPC;
  char *enc = kk_xmalloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)s, (int)n);
  int rc = kk_buf_printf(b, "=?UTF-8?B?%s?=", enc);
  free(enc);
  return rc;
}

/* The subject: m->subject, else the text's first line cut to 60 characters.
   Sets *n to its length in bytes. */
static const char *subject_of(const struct chan_msg *m, size_t *n) {
  if (chan_set(m->subject)) {
    *n = strlen(m->subject);
    return m->subject;
  }
  const char *text = chan_str(m->text);
  size_t line = strcspn(text, "\n");
  if (line > 0 && text[line] == '\n' && text[line - 1] == '\r') line--;
  size_t cut = chan_utf8_prefix(text, SUBJECT_MAX_CHARS);
  *n = cut < line ? cut : line;
  return text;
}

/* s with every LF not after a CR turned into CRLF. */
static int put_crlf(struct kk_buf *b, const char *s) {
  int rc = 0;
  for (size_t i = 0; s[i] && !rc; i++) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) rc = kk_buf_append(b, "\r", 1);
    if (!rc) rc = kk_buf_append(b, &s[i], 1);
  }
  return rc;
}

/* The whole message, headers and body. */
static int put_message(const struct chan_cfg *cfg, const struct chan_msg *m, struct kk_buf *b) {
  int rc = kk_buf_puts(b, "From: ");
  if (!rc && cfg->sender[0]) {
    rc = put_encoded_word(b, cfg->sender, strlen(cfg->sender));
    if (!rc) rc = kk_buf_printf(b, " <%s>\r\n", cfg->from);
  } else if (!rc) {
    rc = kk_buf_printf(b, "%s\r\n", cfg->from);
  }
  if (!rc) rc = kk_buf_printf(b, "To: %s\r\nSubject: ", m->address);
  size_t n;
  const char *subject = subject_of(m, &n);
  if (!rc) rc = put_encoded_word(b, subject, n);
  if (!rc)
    rc = kk_buf_printf(b,
                       "\r\nMessage-ID: <%" PRId64 ".%s@kaskad>\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=UTF-8\r\n"
                       "Content-Transfer-Encoding: 8bit\r\n\r\n",
                       m->attempt_id, chan_str(m->public_id));
  if (!rc) rc = put_crlf(b, chan_str(m->text));
  if (!rc && chan_set(m->button_caption) && chan_set(m->button_url)) {
    rc = kk_buf_puts(b, "\r\n\r\n");
    if (!rc) rc = put_crlf(b, m->button_caption);
    if (!rc) rc = kk_buf_puts(b, ": ");
    if (!rc) rc = put_crlf(b, m->button_url);
  }
  if (!rc && chan_set(m->image)) {
    rc = kk_buf_puts(b, "\r\n\r\n");
    if (!rc) rc = put_crlf(b, m->image);
  }
  if (!rc) rc = kk_buf_puts(b, "\r\n");
  return rc;
}

static int email_build(const struct chan_cfg *cfg, const struct chan_msg *m,
                       struct chan_req *req, char *error, size_t errcap) {
  memset(req, 0, sizeof *req);
  if (!cfg->smtp_url[0]) return chan_error(error, errcap, KK_ENOENT, "smtp_url is not set");
  if (!cfg->from[0]) return chan_error(error, errcap, KK_ENOENT, "from is not set");
  if (!address_ok(cfg->from))
    return chan_error(error, errcap, KK_EINVAL, "from is not an e-mail address");
  if (!address_ok(m->address))
    return chan_error(error, errcap, KK_EINVAL, "email is not an e-mail address");
  int rc = chan_msg_utf8(m, error, errcap);
  if (rc) return rc;

  struct kk_buf b;
  kk_buf_init(&b, CHAN_BODY_MAX);
  if (put_message(cfg, m, &b) != 0) {
    kk_buf_fini(&b);
    return chan_error(error, errcap, KK_EINVAL, "message is too long");
  }
  chan_req_start(req, "POST", kk_xstrdup(cfg->smtp_url));
  req->body = kk_buf_take(&b, &req->body_len);
  req->mail_from = chan_concat("<", cfg->from, ">", (char *)NULL);
  req->mail_rcpt = chan_concat("<", m->address, ">", (char *)NULL);
  if (cfg->token[0]) {
    req->username = kk_xstrdup(cfg->from);
    req->password = kk_xstrdup(cfg->token);
  }
  return 0;
}

/* The first line of an SMTP reply text, printable ASCII only, into out. */
static void first_line(const char *body, size_t len, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; body && i < len && n + 1 < cap; i++) {
    unsigned char c = (unsigned char)body[i];
    if (c == '\r' || c == '\n') break;
    out[n++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
  }
  out[n] = '\0';
}

/* The enhanced status code ("5.1.1") after the reply code in line, into
   out[cap] ("" when there is none): a code, unlike the text after it. */
static void enhanced_code(const char *line, char *out, size_t cap) {
  out[0] = '\0';
  const char *p = line + strspn(line, "0123456789");
  p += strspn(p, " -");
  size_t n = strspn(p, "0123456789.");
  int dots = 0;
  for (size_t i = 0; i < n; i++) dots += p[i] == '.';
  if (n >= 5 && n < cap && dots == 2 && (p[n] == ' ' || p[n] == '\0'))
    snprintf(out, cap, " %.*s", (int)n, p);
}

/* The reply code, the enhanced code and kaskad's words: the server's own
   text (which may come from anywhere smtp_url leads) goes to the log only. */
static void smtp_result(struct chan_result *res, enum chan_outcome o, long code,
                        const char *line, const char *words) {
  char enh[16];
  enhanced_code(line, enh, sizeof enh);
  chan_res_set(res, o, 0, "%ld%s %s", code, enh, words);
  chan_res_detail(res, line);
}

static void email_parse_reply(long http_status, const char *body, size_t len,
                              const char *retry_after, struct chan_result *res) {
  char line[128];
  first_line(body, len, line, sizeof line);
  chan_res_init(res);
  if (http_status == 250) {
    chan_res_ok(res, "");
  } else if (http_status == 535 || http_status == 530) {
    smtp_result(res, CHAN_CONFIG, http_status, line, "the mail server refused the login");
  } else if (http_status >= 500 && http_status < 600) {
    smtp_result(res, CHAN_FAIL, http_status, line, "the mail server refused the message");
  } else if (http_status >= 400 && http_status < 500) {
    smtp_result(res, CHAN_RETRY, http_status, line, "the mail server asked to try again later");
  } else {
    chan_res_unexpected(res, http_status, retry_after);
  }
}

/* Its settings, in the order their errors are reported. */
static const struct chan_field email_fields[] = {
    CHAN_FIELD(token, CHAN_FIELD_SECRET),
    CHAN_FIELD(sender, 0),
    CHAN_FIELD(smtp_url, CHAN_FIELD_SMTP_URL | CHAN_FIELD_REQUIRED),
    CHAN_FIELD(from, CHAN_FIELD_REQUIRED),
};

const struct chan_driver chan_email_driver = {
  .name = "email",
  CHAN_FIELDS(email_fields),
  .reports = CHAN_SENT,
  .address_field = "email",
  .phone_fallback = 0,
  .build = email_build,
  .parse_reply = email_parse_reply,
  .hook = NULL,
  .build_register = NULL,
};
