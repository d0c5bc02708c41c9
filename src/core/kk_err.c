/* kk_err.c - names and descriptions of the KK_E* codes. */
#include "core/kk_err.h"

const char *kk_strerror(int rc) {
  switch (rc) {
  case KK_OK: return "ok";
#define XX(name, code, msg) case KK_##name: return msg;
  KK_ERRNO_MAP(XX)
#undef XX
  }
  return "unknown error";
}

const char *kk_err_name(int rc) {
  switch (rc) {
  case KK_OK: return "OK";
#define XX(name, code, msg) case KK_##name: return #name;
  KK_ERRNO_MAP(XX)
#undef XX
  }
  return "EUNKNOWN";
}
