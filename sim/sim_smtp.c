/*
 * sim_smtp.c - the SMTP sink (see sim_smtp.h).
 *
 * Each connection splits what it reads into lines (LF, with an optional CR
 * before it) and handles them in order, so pipelined commands work. A
 * command line longer than SIM_SMTP_LINE_MAX is answered 500 and dropped; a
 * message line longer than DATA_LINE_MAX, or a message longer than
 * SIM_SMTP_DATA_MAX, is read to its end and then refused with 552. The
 * answers to one read are written together.
 */
#include "sim_smtp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define LOGCTX "smtp"
#define DATA_LINE_MAX (1u << 20)          /* one line of a message */
#define RCPT_MAX 1000                     /* recipients of one message */
#define ADDR_MAX 320                      /* one address */
#define CONN_MAX 1024                     /* open connections */
#define OUT_MAX (4u << 20)                /* unwritten answers that drop the connection */
#define HOSTNAME "kaskad-sim"

enum state {
  ST_CMD,
  ST_AUTH_PLAIN,                          /* waiting for the PLAIN response */
  ST_AUTH_USER,                           /* LOGIN: waiting for the user name */
  ST_AUTH_PASS,                           /* LOGIN: waiting for the password */
  ST_DATA,                                /* collecting the message */
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t idle;
  struct sim_smtp *srv;
  struct conn *prev, *next;               /* in srv->conns */
  int handles_open;                       /* tcp and idle until closed */
  int closing;
  int quit;                               /* QUIT or timeout: close once answered */
  enum state st;
  int discarding;                         /* the current line passed its cap */
  int too_big;                            /* DATA: the message passed a cap */
  char peer[64];
  struct kk_buf line;                     /* the line being read */
  struct kk_buf data;                     /* DATA: the message so far */
  struct kk_buf out;                      /* answers of this read, not yet written */
  char *from;                             /* MAIL FROM address; NULL before MAIL */
  char **rcpt;                            /* accepted recipients */
  size_t nrcpt;
};

struct sim_smtp {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int listener_open;
  int closing;
  struct sim_smtp_opts o;
  struct conn *conns;
  size_t nconns;
  uint64_t next_id;                       /* queue ids given */
};

/* A write with its bytes. */
struct wr {
  uv_write_t req;
  struct conn *c;
  int close_after;
  char data[];
};

static void conn_close(struct conn *c);

/* ---- output ---- */

static void say(struct conn *c, const char *line) {
  kk_buf_puts(&c->out, line);
  kk_buf_append(&c->out, "\r\n", 2);
}

static void on_written(uv_write_t *req, int status) {
  struct wr *w = (struct wr *)req;
  struct conn *c = w->c;
  int close_after = w->close_after;
  free(w);
  if (status < 0 || close_after) conn_close(c);
}

/* Writes what the last read produced; closes afterwards after QUIT. */
static void flush(struct conn *c) {
  if (c->closing || c->out.len == 0) return;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > OUT_MAX) {
    kk_warnx(LOGCTX, "%s does not read its answers; closing", c->peer);
    conn_close(c);
    return;
  }
  struct wr *w = kk_xmalloc(sizeof *w + c->out.len);
  w->c = c;
  w->close_after = c->quit;
  memcpy(w->data, c->out.p, c->out.len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)c->out.len);
  kk_buf_reset(&c->out);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    free(w);
    conn_close(c);
  }
}

/* ---- the transaction ---- */

static void reset_tx(struct conn *c) {
  free(c->from);
  c->from = NULL;
  for (size_t i = 0; i < c->nrcpt; i++) free(c->rcpt[i]);
  c->nrcpt = 0;
  c->too_big = 0;
  /* A large message's buffer is not kept for the next one. */
  if (c->data.cap > DATA_LINE_MAX)
    kk_buf_fini(&c->data);
  else
    kk_buf_reset(&c->data);
}

/*
 * Reads the address of "<addr> params" (or a bare "addr params") after a
 * MAIL FROM: / RCPT TO: prefix into out. Returns 0, or KK_EINVAL when it is
 * malformed or longer than ADDR_MAX. *params receives what follows.
 */
static int parse_path(const char *s, char out[ADDR_MAX + 1], const char **params) {
  while (*s == ' ') s++;
  const char *start, *end;
  if (*s == '<') {
    start = s + 1;
    end = strchr(start, '>');
    if (end == NULL) return KK_EINVAL;
    *params = end + 1;
  } else {
    start = s;
    end = start + strcspn(start, " ");
    if (end == start) return KK_EINVAL;
    *params = end;
  }
  size_t n = (size_t)(end - start);
  if (n > ADDR_MAX || memchr(start, ' ', n)) return KK_EINVAL;
  memcpy(out, start, n);
  out[n] = '\0';
  return 0;
}

/* Why a recipient is refused, or NULL: "no_such_user" or "unreached". */
static const char *refuse_rcpt(struct conn *c, const char *addr) {
  const char *at = strrchr(addr, '@');
  size_t local = at ? (size_t)(at - addr) : strlen(addr);
  if (local == 6 && strncasecmp(addr, "nobody", 6) == 0) return "no_such_user";
  if (at && strcasecmp(at + 1, "invalid.test") == 0) return "no_such_user";
  char lower[ADDR_MAX + 1];
  size_t i = 0;
  for (; addr[i] && i < ADDR_MAX; i++)
    lower[i] = (addr[i] >= 'A' && addr[i] <= 'Z') ? (char)(addr[i] + 32) : addr[i];
  lower[i] = '\0';
  if (!sim_chan_reached(c->srv->o.chan, SIM_CH_EMAIL, lower)) return "unreached";
  return NULL;
}

static void end_data(struct conn *c) {
  struct sim_smtp *s = c->srv;
  c->st = ST_CMD;
  if (c->too_big) {
    sim_chan_count_refused(s->o.chan, SIM_CH_EMAIL, "too_big");
    say(c, "552 5.3.4 Message size exceeds fixed limit");
    reset_tx(c);
    return;
  }
  char id[32], line[80];
  snprintf(id, sizeof id, "SIM%010" PRIX64, ++s->next_id);
  struct sim_chan_mail m = {
    .from = c->from,
    .rcpt = (const char *const *)c->rcpt,
    .nrcpt = c->nrcpt,
    .data = c->data.p ? c->data.p : "",
    .len = c->data.len,
  };
  sim_chan_record_mail(s->o.chan, &m);
  kk_debug(LOGCTX, "%s: mail %s from <%s> to %zu recipients, %zu bytes", c->peer, id, c->from,
           c->nrcpt, c->data.len);
  snprintf(line, sizeof line, "250 2.0.0 Ok: queued as %s", id);
  say(c, line);
  reset_tx(c);
}

static void data_line(struct conn *c, const char *s, size_t len) {
  if (len == 1 && s[0] == '.') {
    end_data(c);
    return;
  }
  if (len && s[0] == '.') {
    s++;
    len--;
  }
  if (c->too_big) return;
  if (c->data.len + len + 2 > SIM_SMTP_DATA_MAX || kk_buf_append(&c->data, s, len) != 0 ||
      kk_buf_append(&c->data, "\r\n", 2) != 0) {
    c->too_big = 1;
    kk_buf_fini(&c->data);
  }
}

/* Is the line's verb word (case-insensitive, followed by the end or a space)? */
static int verb_is(const char *s, const char *word, const char **arg) {
  size_t n = strlen(word);
  if (strncasecmp(s, word, n) != 0 || (s[n] != '\0' && s[n] != ' ')) return 0;
  s += n;
  while (*s == ' ') s++;
  *arg = s;
  return 1;
}

static void command(struct conn *c, const char *s) {
  const char *arg;
  char addr[ADDR_MAX + 1];
  const char *params;
  if (verb_is(s, "EHLO", &arg)) {
    reset_tx(c);
    say(c, "250-" HOSTNAME);
    say(c, "250-8BITMIME");
    say(c, "250-AUTH PLAIN LOGIN");
    say(c, "250 SIZE 10485760");
  } else if (verb_is(s, "HELO", &arg)) {
    reset_tx(c);
    say(c, "250 " HOSTNAME);
  } else if (verb_is(s, "AUTH", &arg)) {
    const char *ir = arg + strcspn(arg, " ");
    while (*ir == ' ') ir++;
    if (strncasecmp(arg, "PLAIN", 5) == 0 && (arg[5] == ' ' || arg[5] == '\0')) {
      if (*ir) {
        say(c, "235 2.7.0 Authentication successful");
      } else {
        c->st = ST_AUTH_PLAIN;
        say(c, "334 ");
      }
    } else if (strncasecmp(arg, "LOGIN", 5) == 0 && (arg[5] == ' ' || arg[5] == '\0')) {
      c->st = *ir ? ST_AUTH_PASS : ST_AUTH_USER;
      say(c, *ir ? "334 UGFzc3dvcmQ6" : "334 VXNlcm5hbWU6");
    } else {
      say(c, "504 5.5.4 Unrecognized authentication type");
    }
  } else if (verb_is(s, "MAIL", &arg)) {
    if (strncasecmp(arg, "FROM:", 5) != 0 || parse_path(arg + 5, addr, &params) != 0) {
      say(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
      return;
    }
    const char *size = strcasestr(params, "SIZE=");
    if (size && strtoull(size + 5, NULL, 10) > SIM_SMTP_DATA_MAX) {
      say(c, "552 5.3.4 Message size exceeds fixed limit");
      return;
    }
    reset_tx(c);
    c->from = kk_xstrdup(addr);
    say(c, "250 2.1.0 Ok");
  } else if (verb_is(s, "RCPT", &arg)) {
    if (c->from == NULL) {
      say(c, "503 5.5.1 Error: need MAIL command");
      return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0 || parse_path(arg + 3, addr, &params) != 0 ||
        addr[0] == '\0') {
      say(c, "501 5.5.4 Syntax: RCPT TO:<address>");
      return;
    }
    if (c->nrcpt == RCPT_MAX) {
      say(c, "452 4.5.3 Error: too many recipients");
      return;
    }
    const char *why = refuse_rcpt(c, addr);
    if (why) {
      sim_chan_count_refused(c->srv->o.chan, SIM_CH_EMAIL, why);
      say(c, "550 5.1.1 No such user");
      return;
    }
    if (c->rcpt == NULL) c->rcpt = kk_xcalloc(RCPT_MAX, sizeof *c->rcpt);
    c->rcpt[c->nrcpt++] = kk_xstrdup(addr);
    say(c, "250 2.1.5 Ok");
  } else if (verb_is(s, "DATA", &arg)) {
    if (c->from == NULL) {
      say(c, "503 5.5.1 Error: need MAIL command");
    } else if (c->nrcpt == 0) {
      say(c, "503 5.5.1 Error: need RCPT command");
    } else {
      c->st = ST_DATA;
      c->too_big = 0;
      kk_buf_reset(&c->data);
      say(c, "354 End data with <CR><LF>.<CR><LF>");
    }
  } else if (verb_is(s, "RSET", &arg)) {
    reset_tx(c);
    say(c, "250 2.0.0 Ok");
  } else if (verb_is(s, "NOOP", &arg)) {
    say(c, "250 2.0.0 Ok");
  } else if (verb_is(s, "VRFY", &arg)) {
    say(c, "252 2.0.0 Cannot VRFY user");
  } else if (verb_is(s, "QUIT", &arg)) {
    say(c, "221 2.0.0 Bye");
    c->quit = 1;
  } else {
    say(c, "500 5.5.2 Error: command not recognized");
  }
}

static void on_line(struct conn *c, char *s, size_t len) {
  if (len && s[len - 1] == '\r') s[--len] = '\0';
  switch (c->st) {
  case ST_DATA:
    data_line(c, s, len);
    return;
  case ST_AUTH_PLAIN:
  case ST_AUTH_PASS:
    c->st = ST_CMD;
    say(c, strcmp(s, "*") == 0 ? "501 5.7.0 Authentication cancelled"
                               : "235 2.7.0 Authentication successful");
    return;
  case ST_AUTH_USER:
    if (strcmp(s, "*") == 0) {
      c->st = ST_CMD;
      say(c, "501 5.7.0 Authentication cancelled");
    } else {
      c->st = ST_AUTH_PASS;
      say(c, "334 UGFzc3dvcmQ6");
    }
    return;
  case ST_CMD:
    if (memchr(s, '\0', len)) {
      say(c, "500 5.5.2 Error: bad syntax");
      return;
    }
    command(c, s);
    return;
  }
}

/* Splits the bytes into lines and handles each. */
static void on_bytes(struct conn *c, const char *p, size_t n) {
  while (n > 0 && !c->closing && !c->quit) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    size_t cap = c->st == ST_DATA ? DATA_LINE_MAX : SIM_SMTP_LINE_MAX + 1;   /* + the CR */
    if (!c->discarding) {
      if (c->line.len + take > cap) {
        c->discarding = 1;
        kk_buf_fini(&c->line);
      } else {
        kk_buf_append(&c->line, p, take);
      }
    }
    if (nl == NULL) return;
    p += take + 1;
    n -= take + 1;
    if (c->discarding) {
      c->discarding = 0;
      if (c->st == ST_DATA) {
        c->too_big = 1;
        kk_buf_fini(&c->data);
      } else {
        say(c, "500 5.5.2 Error: line too long");
      }
      continue;
    }
    char empty[1] = "";
    on_line(c, c->line.p ? c->line.p : empty, c->line.len);
    kk_buf_reset(&c->line);
  }
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  if (--c->handles_open > 0) return;
  struct sim_smtp *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  reset_tx(c);
  free(c->rcpt);
  kk_buf_fini(&c->line);
  kk_buf_fini(&c->data);
  kk_buf_fini(&c->out);
  free(c);
}

static void conn_close(struct conn *c) {
  if (c->closing) return;
  c->closing = 1;
  kk_debug(LOGCTX, "%s: closed", c->peer);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->idle, on_conn_closed);
}

/* An idle connection is told why (if its socket takes it now) and closed. */
static void on_idle(uv_timer_t *t) {
  struct conn *c = t->data;
  static char bye[] = "421 4.4.2 " HOSTNAME " Error: timeout exceeded\r\n";
  kk_debug(LOGCTX, "%s: idle, closing", c->peer);
  uv_buf_t b = uv_buf_init(bye, sizeof bye - 1);
  uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  buf->base = kk_xmalloc(65536);
  buf->len = 65536;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = st->data;
  if (nread > 0 && !c->quit) {
    uv_timer_start(&c->idle, on_idle, (uint64_t)c->srv->o.idle_ms, 0);
    on_bytes(c, buf->base, (size_t)nread);
    flush(c);
    if (c->quit) uv_read_stop(st);
  } else if (nread < 0) {
    conn_close(c);
  }
  free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
  struct sim_smtp *s = server->data;
  if (status < 0) {
    kk_warnx(LOGCTX, "accept: %s", uv_strerror(status));
    return;
  }
  /* Freed in on_conn_closed once both handles are closed. */
  struct conn *c = kk_xcalloc(1, sizeof *c);
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->idle);
  c->tcp.data = c->idle.data = c;
  c->handles_open = 2;
  kk_buf_init(&c->line, DATA_LINE_MAX + 2);
  kk_buf_init(&c->data, SIM_SMTP_DATA_MAX + 2);
  kk_buf_init(&c->out, OUT_MAX);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  snprintf(c->peer, sizeof c->peer, "smtp[?]");
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  struct sockaddr_storage sa;
  int salen = sizeof sa;
  char ip[48] = "?";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
    if (sa.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
    else
      uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
  }
  snprintf(c->peer, sizeof c->peer, "smtp[%s]", ip);
  if (s->nconns > CONN_MAX) {
    say(c, "421 4.7.0 " HOSTNAME " Error: too many connections");
    c->quit = 1;
    flush(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  say(c, "220 " HOSTNAME " ESMTP");
  flush(c);
  uv_timer_start(&c->idle, on_idle, (uint64_t)s->o.idle_ms, 0);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int sim_smtp_start(uv_loop_t *loop, const struct sim_smtp_opts *o, struct sim_smtp **out) {
  struct sim_smtp *s = kk_xcalloc(1, sizeof *s);
  s->loop = loop;
  s->o = *o;
  if (s->o.idle_ms <= 0) s->o.idle_ms = SIM_SMTP_IDLE_MS;
  *out = s;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->listener_open = 1;
  int rc = uv_tcp_bind(&s->listener, o->addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (rc != 0) {
    kk_error(LOGCTX, "cannot listen: %s", uv_strerror(rc));
    return KK_EIO;
  }
  return 0;
}

void sim_smtp_stop(struct sim_smtp *s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->listener_open) {
    uv_close((uv_handle_t *)&s->listener, NULL);
    s->listener_open = 0;
  }
  for (struct conn *c = s->conns; c; c = c->next) conn_close(c);
}

void sim_smtp_free(struct sim_smtp *s) {
  free(s);
}
