/*
 * kk_err.h - error codes shared by every kaskad module.
 *
 * Functions return 0 on success or a negative KK_E* code. Protocol statuses
 * (SMPP command_status, HTTP codes) are a separate value space, mapped at the
 * edge of each protocol module. The list below is the only place a code is
 * defined; kk_strerror() and kk_err_name() are generated from it.
 */
#ifndef KK_ERR_H
#define KK_ERR_H

#define KK_ERRNO_MAP(XX)                                   \
  XX(EAGAIN,   -1, "incomplete input, call again")        \
  XX(EPROTO,   -2, "protocol violation")                   \
  XX(EINVAL,   -3, "invalid argument")                     \
  XX(ENOSPC,   -4, "buffer too small")                     \
  XX(ERANGE,   -5, "value out of range")                   \
  XX(ENOENT,   -6, "not found")                            \
  XX(EEXIST,   -7, "already exists")                       \
  XX(EIO,      -8, "input/output error")                   \
  XX(ESTORE,   -9, "store error")                          \
  XX(EAUTH,   -10, "not authorised")                       \
  XX(EBUSY,   -11, "busy, try later")                      \
  XX(ECLOSED, -12, "closed")                               \
  XX(ETOOBIG, -13, "too big")                              \
  XX(EUTF8,   -14, "invalid UTF-8")                        \
  XX(ETIMEDOUT, -15, "timed out")

enum kk_err {
  KK_OK = 0,
#define XX(name, code, msg) KK_##name = (code),
  KK_ERRNO_MAP(XX)
#undef XX
};

/* Returns a static description of rc ("unknown error" when not a KK code). */
const char *kk_strerror(int rc);
/* Returns the static name of rc, e.g. "EAGAIN". */
const char *kk_err_name(int rc);

#endif
