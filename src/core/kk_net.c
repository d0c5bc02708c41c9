/*
 * kk_net.c - address ranges, the addresses refused by default and the check
 * of a tenant-set URL's host (see kk_net.h).
 */
#include "core/kk_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/kk_err.h"

/* A range refused by default and the word for it. */
struct special {
  const char *cidr;
  const char *why;
};

/* Checked in order: the metadata addresses come before the ranges that hold
   them, so that they get their own name (and rule). */
static const struct special specials[] = {
    {"169.254.169.254/32", "metadata"},
    {"fd00:ec2::254/128", "metadata"},
    {"0.0.0.0/8", "unspecified"},
    {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "shared (CGNAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "reserved"},
    {"192.168.0.0/16", "private"},
    {"198.18.0.0/15", "reserved"},
    {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved or broadcast"},
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"100::/64", "reserved"},
    {"fc00::/7", "private"},
    {"fe80::/10", "link-local"},
    {"fec0::/10", "private"},
    {"ff00::/8", "multicast"},
};
#define NSPECIALS (sizeof specials / sizeof specials[0])

int kk_ip_parse(const char *s, struct kk_ip *out) {
  char buf[64];
  size_t n = strlen(s);
  if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
    s++;
    n -= 2;
  }
  if (n == 0 || n >= sizeof buf) return KK_EINVAL;
  memcpy(buf, s, n);
  buf[n] = '\0';
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, buf, out->a) == 1) {
    out->family = 4;
    return 0;
  }
  if (inet_pton(AF_INET6, buf, out->a) == 1) {
    out->family = 6;
    return 0;
  }
  return KK_EINVAL;
}

int kk_cidr_parse(const char *s, struct kk_cidr *out) {
  char buf[80];
  if (strlen(s) >= sizeof buf) return KK_EINVAL;
  snprintf(buf, sizeof buf, "%s", s);
  char *slash = strchr(buf, '/');
  if (slash) *slash = '\0';
  if (kk_ip_parse(buf, &out->ip) != 0) return KK_EINVAL;
  int max = out->ip.family == 4 ? 32 : 128;
  out->bits = max;
  if (slash) {
    char *end;
    long bits = strtol(slash + 1, &end, 10);
    if (slash[1] < '0' || slash[1] > '9' || *end || bits > max) return KK_EINVAL;
    out->bits = (int)bits;
  }
  /* Bits past the prefix must be zero: "10.0.0.1/8" is most likely a typo. */
  for (int i = out->bits; i < max; i++)
    if (out->ip.a[i / 8] & (0x80 >> (i % 8))) return KK_EINVAL;
  return 0;
}

int kk_cidr_match(const struct kk_cidr *c, const struct kk_ip *ip) {
  if (c->ip.family != ip->family) return 0;
  int full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(c->ip.a, ip->a, (size_t)full) != 0) return 0;
  if (rest == 0) return 1;
  uint8_t mask = (uint8_t)(0xFF << (8 - rest));
  return (c->ip.a[full] & mask) == (ip->a[full] & mask);
}

int kk_net_allow_parse(const char *list, struct kk_net_allow *out, char *bad, size_t badcap) {
  memset(out, 0, sizeof *out);
  const char *p = list ? list : "";
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (!*p) break;
    size_t n = strcspn(p, ", \t");
    char item[80];
    snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), p);
    if (n >= sizeof item || out->n == KK_NET_ALLOW_MAX || kk_cidr_parse(item, &out->r[out->n]) != 0) {
      if (bad) snprintf(bad, badcap, "%s", item);
      return KK_EINVAL;
    }
    out->n++;
    p += n;
  }
  return 0;
}

static int all_zero(const uint8_t *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i]) return 0;
  return 1;
}

int kk_ip_embedded_v4(const struct kk_ip *ip, struct kk_ip *v4) {
  static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
  if (ip->family != 6) return 0;
  const uint8_t *a = ip->a, *src = NULL;
  if (all_zero(a, 10) && a[10] == 0xff && a[11] == 0xff)
    src = a + 12;                                  /* ::ffff:a.b.c.d */
  else if (all_zero(a, 12) && !all_zero(a + 12, 3))
    src = a + 12;                                  /* ::a.b.c.d (not :: or ::1) */
  else if (memcmp(a, nat64, 12) == 0)
    src = a + 12;                                  /* 64:ff9b::a.b.c.d */
  else if (a[0] == 0x20 && a[1] == 0x02)
    src = a + 2;                                   /* 2002:AABB:CCDD:: (6to4) */
  if (src == NULL) return 0;
  memset(v4, 0, sizeof *v4);
  v4->family = 4;
  memcpy(v4->a, src, 4);
  return 1;
}

/* The entry of specials that holds ip, or NULL. */
static const struct special *special_of(const struct kk_ip *ip) {
  for (size_t i = 0; i < NSPECIALS; i++) {
    struct kk_cidr c;
    if (kk_cidr_parse(specials[i].cidr, &c) == 0 && kk_cidr_match(&c, ip)) return &specials[i];
  }
  return NULL;
}

const char *kk_ip_special(const struct kk_ip *ip) {
  const struct special *s = special_of(ip);
  struct kk_ip v4;
  if (s == NULL && kk_ip_embedded_v4(ip, &v4)) s = special_of(&v4);
  return s ? s->why : NULL;
}

/* 1 when a range of allow holds ip; exact: only a range of one address. */
static int held(const struct kk_net_allow *allow, const struct kk_ip *ip, int exact) {
  for (int i = 0; allow && i < allow->n; i++) {
    const struct kk_cidr *c = &allow->r[i];
    if (exact && c->bits != (c->ip.family == 4 ? 32 : 128)) continue;
    if (kk_cidr_match(c, ip)) return 1;
  }
  return 0;
}

int kk_net_allowed(const struct kk_net_allow *allow, const struct kk_ip *ip, const char **why) {
  const char *w = kk_ip_special(ip);
  if (w == NULL) return 1;
  int exact = strcmp(w, "metadata") == 0;
  struct kk_ip v4;
  if (held(allow, ip, exact) || (kk_ip_embedded_v4(ip, &v4) && held(allow, &v4, exact)))
    return 1;
  if (why) *why = w;
  return 0;
}

int kk_net_sockaddr_allowed(const struct kk_net_allow *allow, const struct sockaddr *sa,
                            char *text, size_t cap, const char **why) {
  struct kk_ip ip;
  memset(&ip, 0, sizeof ip);
  if (sa->sa_family == AF_INET) {
    ip.family = 4;
    memcpy(ip.a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    ip.family = 6;
    memcpy(ip.a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
  } else {
    if (text && cap) snprintf(text, cap, "a socket of family %d", sa->sa_family);
    if (why) *why = "not an IP address";
    return 0;
  }
  if (text && cap) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(ip.family == 4 ? AF_INET : AF_INET6, ip.a, buf, sizeof buf);
    snprintf(text, cap, "%s", buf);
  }
  return kk_net_allowed(allow, &ip, why);
}

/* ---- URLs ------------------------------------------------------------------ */

/* 1 when the n bytes at s are one of the comma-separated schemes. */
static int scheme_in(const char *s, size_t n, const char *schemes) {
  for (const char *p = schemes; *p;) {
    size_t len = strcspn(p, ",");
    if (len == n && strncasecmp(s, p, n) == 0) return 1;
    p += len;
    if (*p == ',') p++;
  }
  return 0;
}

/* 1 for "localhost", "localhost." and names under it. */
static int is_localhost(const char *h) {
  size_t n = strlen(h);
  if (n > 0 && h[n - 1] == '.') n--;
  return (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
         (n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0);
}

/* The host as a literal address: IPv6 in brackets, IPv4 in any form the
   resolver takes ("127.1", "0x7f000001", "2130706433"). 0 or KK_EINVAL. */
static int host_literal(const char *host, struct kk_ip *ip) {
  if (host[0] == '[') return kk_ip_parse(host, ip);
  struct in_addr in;
  if (inet_aton(host, &in) == 0) return KK_EINVAL;
  memset(ip, 0, sizeof *ip);
  ip->family = 4;
  memcpy(ip->a, &in, 4);
  return 0;
}

/* Copies the URL's host (brackets kept for IPv6) into host[cap]; sets
   *userinfo when the authority has an '@'. 0 or KK_EINVAL. */
static int url_host(const char *authority, size_t n, char *host, size_t cap, int *userinfo) {
  *userinfo = memchr(authority, '@', n) != NULL;
  if (*userinfo) return 0;
  size_t h;
  if (n > 0 && authority[0] == '[') {
    const char *close = memchr(authority, ']', n);
    if (close == NULL) return KK_EINVAL;
    h = (size_t)(close - authority) + 1;
  } else {
    h = strcspn(authority, ":/?#");
    if (h > n) h = n;
    for (size_t i = 0; i < h; i++) {
      unsigned char c = (unsigned char)authority[i];
      if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
        return KK_EINVAL;
    }
  }
  if (h == 0 || h >= cap) return KK_EINVAL;
  memcpy(host, authority, h);
  host[h] = '\0';
  const char *rest = authority + h;
  if (rest < authority + n && *rest != ':') return KK_EINVAL;
  return 0;
}

int kk_net_url_check(const char *url, const char *schemes, const struct kk_net_allow *allow,
                     char *why, size_t cap) {
  const char *sep = url ? strstr(url, "://") : NULL;
  if (sep == NULL || !scheme_in(url, (size_t)(sep - url), schemes)) {
    snprintf(why, cap, "the URL must start with one of %s followed by ://", schemes);
    return KK_EINVAL;
  }
  const char *authority = sep + 3;
  size_t n = strcspn(authority, "/?#");
  char host[300];
  int userinfo;
  if (url_host(authority, n, host, sizeof host, &userinfo) != 0) {
    snprintf(why, cap, "the URL has no valid host");
    return KK_EINVAL;
  }
  if (userinfo) {
    snprintf(why, cap, "the URL must not carry a user name or password");
    return KK_EAUTH;
  }
  struct kk_ip ip;
  const char *w = NULL;
  /* localhost is 127.0.0.1 wherever it is not ::1 (both are loopback). */
  if (is_localhost(host) ? kk_ip_parse("127.0.0.1", &ip) == 0 && !kk_net_allowed(allow, &ip, &w)
                         : host_literal(host, &ip) == 0 && !kk_net_allowed(allow, &ip, &w)) {
    snprintf(why, cap, "the URL's host %s is a %s address, which kaskad does not connect to", host,
             w);
    return KK_EAUTH;
  }
  return 0;
}
