/*
 * kk_log.h - one line per event, with its context.
 *
 *   2026-11-23T21:04:05.123Z info  smpp[route=sim#0]: bound as transceiver
 *
 * The level is checked before anything is formatted. Lines go to stderr. The
 * level and the output stream are the only process-wide logging state.
 * kk_log_warn() appends strerror(errno); the other calls do not.
 */
#ifndef KK_LOG_H
#define KK_LOG_H

enum kk_log_level { KK_LOG_DEBUG, KK_LOG_INFO, KK_LOG_WARN, KK_LOG_ERROR };

extern enum kk_log_level kk_log_level;

/* Parses "debug|info|warn|error"; returns the level, or KK_EINVAL when
   unknown. */
int kk_log_parse_level(const char *s);

void kk_log_emit(enum kk_log_level lvl, const char *ctx, int with_errno,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define kk_log(lvl, ctx, ...)                                       \
  do {                                                              \
    if ((lvl) >= kk_log_level) kk_log_emit((lvl), (ctx), 0, __VA_ARGS__); \
  } while (0)
#define kk_debug(ctx, ...) kk_log(KK_LOG_DEBUG, ctx, __VA_ARGS__)
#define kk_info(ctx, ...) kk_log(KK_LOG_INFO, ctx, __VA_ARGS__)
#define kk_warnx(ctx, ...) kk_log(KK_LOG_WARN, ctx, __VA_ARGS__)
#define kk_error(ctx, ...) kk_log(KK_LOG_ERROR, ctx, __VA_ARGS__)
#define kk_log_warn(ctx, ...)                                       \
  do {                                                              \
    if (KK_LOG_WARN >= kk_log_level) kk_log_emit(KK_LOG_WARN, (ctx), 1, __VA_ARGS__); \
  } while (0)

#endif
