/*
 * kk_net.h - where outbound requests may go: IP address ranges (CIDR), the
 * addresses that are never reached unless the operator allows them, and the
 * check of a tenant-set URL's host.
 *
 * A tenant sets URLs (a provider's base_url, an SMTP server, a callback URL)
 * and kaskad connects to them from inside the operator's network. Loopback,
 * private, link-local, shared (CGNAT), multicast, reserved and the cloud
 * metadata addresses are refused, in every IPv6 form that carries an IPv4
 * address, unless a range of the operator's allow list holds them. The
 * metadata addresses are allowed only by a range of exactly that one address,
 * so that allowing a link-local or private network does not open them.
 *
 * Everything here is pure: no I/O, no DNS, no logging, no global state.
 */
#ifndef KK_NET_H
#define KK_NET_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define KK_NET_ALLOW_MAX 32

/* An address: IPv4 in the first 4 bytes (family 4) or IPv6 (family 6). */
struct kk_ip {
  int family;                /* 4 or 6 */
  uint8_t a[16];
};

/* A range: the first bits of ip. */
struct kk_cidr {
  struct kk_ip ip;
  int bits;                  /* 0..32 or 0..128 */
};

/* The operator's allow list (the outbound_allow setting). */
struct kk_net_allow {
  int n;
  struct kk_cidr r[KK_NET_ALLOW_MAX];
};

/* Parses a literal address ("10.1.2.3", "::1", "[::1]"); 0 or KK_EINVAL. */
int kk_ip_parse(const char *s, struct kk_ip *out);
/* Parses "10.0.0.0/8", "fd00::/8" or one address (a range of it alone). The
   bits below the prefix must be zero. Returns 0 or KK_EINVAL. */
int kk_cidr_parse(const char *s, struct kk_cidr *out);
/* 1 when ip is in c (an IPv4 range never holds an IPv6 address). */
int kk_cidr_match(const struct kk_cidr *c, const struct kk_ip *ip);
/* Parses a comma-separated list of ranges (spaces allowed, "" = none).
   Returns 0, or KK_EINVAL with the offending item in bad[badcap]. */
int kk_net_allow_parse(const char *list, struct kk_net_allow *out, char *bad, size_t badcap);

/* The IPv4 address an IPv6 one carries (IPv4-mapped ::ffff:a.b.c.d,
   IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:AABB:CCDD::),
   as 1 with *v4 set; 0 when it carries none. */
int kk_ip_embedded_v4(const struct kk_ip *ip, struct kk_ip *v4);
/* Why ip may not be reached by default: "loopback", "private", "metadata",
   ...; NULL for a public address. */
const char *kk_ip_special(const struct kk_ip *ip);
/* 1 when ip may be reached: public, or held by allow (may be NULL). Else 0
   with *why set to the kind of address (when why is not NULL). */
int kk_net_allowed(const struct kk_net_allow *allow, const struct kk_ip *ip, const char **why);
/* kk_net_allowed for a socket address; the address as text goes to
   text[cap] (may be NULL). An address of another family is refused. */
int kk_net_sockaddr_allowed(const struct kk_net_allow *allow, const struct sockaddr *sa,
                            char *text, size_t cap, const char **why);

/*
 * Checks the shape and host of a tenant-set URL before it is stored: its
 * scheme is one of schemes ("http,https"), it has no user name or password,
 * and its host is not a literal address kk_net_allowed() refuses (IPv4 in
 * any form inet_aton takes, bracketed IPv6), nor "localhost" (or a name
 * under it) unless 127.0.0.1 is allowed. Host names are not resolved: the connect-time check
 * (http_client) covers them. Returns 0, or KK_EINVAL for a URL that is not
 * of the schemes or not well formed, KK_EAUTH for one that is refused; why
 * gets a sentence either way.
 */
int kk_net_url_check(const char *url, const char *schemes, const struct kk_net_allow *allow,
                     char *why, size_t cap);

#endif
