/* kk_log.c - line logger (see kk_log.h). */
#include "core/kk_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "core/kk_err.h"

enum kk_log_level kk_log_level = KK_LOG_INFO;

static const char *names[] = {"debug", "info", "warn", "error"};

int kk_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcasecmp(s, names[i]) == 0) return i;
  return KK_EINVAL;
}

void kk_log_emit(enum kk_log_level lvl, const char *ctx, int with_errno,
                 const char *fmt, ...) {
  int saved = errno;
  char line[2048];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof line,
                   "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                   names[lvl], ctx ? ctx : "kaskad");
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line)
    n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line - 64) n = (int)sizeof line - 64;
  if (with_errno) n += snprintf(line + n, sizeof line - (size_t)n, ": %s", strerror(saved));
  /* Keep one event on one line whatever the message held. */
  for (int i = 0; i < n; i++)
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  line[n++] = '\n';
  fwrite(line, 1, (size_t)n, stderr);
  errno = saved;
}
