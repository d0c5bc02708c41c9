/* test_net.c - kk_net: ranges, the addresses refused by default, URL hosts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/kk_err.h"
#include "core/kk_net.h"
#include "kk_test.h"

KK_TEST(net_cidr_parse_match) {
  static const struct {
    const char *cidr, *ip;
    int match;
  } t[] = {
      {"10.0.0.0/8", "10.255.1.2", 1},     {"10.0.0.0/8", "11.0.0.1", 0},
      {"127.0.0.1", "127.0.0.1", 1},       {"127.0.0.1/32", "127.0.0.2", 0},
      {"172.16.0.0/12", "172.31.255.255", 1}, {"172.16.0.0/12", "172.32.0.0", 0},
      {"0.0.0.0/0", "8.8.8.8", 1},         {"0.0.0.0/0", "::1", 0},
      {"fc00::/7", "fdff::1", 1},          {"fc00::/7", "fe00::1", 0},
      {"::1/128", "::1", 1},               {"[::1]", "::1", 1},
      {"100.64.0.0/10", "100.127.255.255", 1}, {"100.64.0.0/10", "100.128.0.0", 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct kk_cidr c;
    struct kk_ip ip;
    ASSERT_EQ(kk_cidr_parse(t[i].cidr, &c), 0);
    ASSERT_EQ(kk_ip_parse(t[i].ip, &ip), 0);
    if (kk_cidr_match(&c, &ip) != t[i].match)
      kk_test_fail(__FILE__, __LINE__, "%s in %s: want %d", t[i].ip, t[i].cidr, t[i].match);
  }
  static const char *const bad[] = {"", "10.0.0.0/33", "10.0.0.1/8", "10.0.0/8", "::1/129",
                                    "host", "10.0.0.0/", "10.0.0.0/-1", "1.2.3.4/8x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct kk_cidr c;
    if (kk_cidr_parse(bad[i], &c) != KK_EINVAL)
      kk_test_fail(__FILE__, __LINE__, "\"%s\" parsed", bad[i]);
  }
}

KK_TEST(net_special_table) {
  static const struct {
    const char *ip, *why;   /* why NULL: public */
  } t[] = {
      {"127.0.0.1", "loopback"},         {"127.255.0.9", "loopback"},
      {"10.1.2.3", "private"},           {"172.16.0.1", "private"},
      {"192.168.1.1", "private"},        {"169.254.1.1", "link-local"},
      {"169.254.169.254", "metadata"},   {"100.64.0.1", "shared (CGNAT)"},
      {"0.0.0.0", "unspecified"},        {"0.1.2.3", "unspecified"},
      {"255.255.255.255", "reserved or broadcast"}, {"224.0.0.1", "multicast"},
      {"239.255.255.250", "multicast"},  {"::", "unspecified"},
      {"::1", "loopback"},               {"fc00::1", "private"},
      {"fd00:ec2::254", "metadata"},     {"fe80::1", "link-local"},
      {"ff02::1", "multicast"},          {"::ffff:127.0.0.1", "loopback"},
      {"::ffff:169.254.169.254", "metadata"}, {"::ffff:10.0.0.1", "private"},
      {"::127.0.0.1", "loopback"},       {"64:ff9b::7f00:1", "loopback"},
      {"2002:7f00:1::", "loopback"},     {"2002:a9fe:a9fe::1", "metadata"},
      {"8.8.8.8", NULL},                 {"93.184.216.34", NULL},
      {"172.32.0.1", NULL},              {"2a00:1450:4001::1", NULL},
      {"::ffff:8.8.8.8", NULL},          {"100.128.0.1", NULL},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct kk_ip ip;
    ASSERT_EQ(kk_ip_parse(t[i].ip, &ip), 0);
    const char *why = kk_ip_special(&ip);
    if ((why == NULL) != (t[i].why == NULL) || (why && strcmp(why, t[i].why) != 0))
      kk_test_fail(__FILE__, __LINE__, "%s: \"%s\" != \"%s\"", t[i].ip, why ? why : "(public)",
                   t[i].why ? t[i].why : "(public)");
  }
}

KK_TEST(net_allow_list) {
  struct kk_net_allow allow;
  char bad[80] = "";
  ASSERT_EQ(kk_net_allow_parse("", &allow, bad, sizeof bad), 0);
  ASSERT_EQ(allow.n, 0);
  ASSERT_EQ(kk_net_allow_parse(" 127.0.0.1/32, 10.0.0.0/8,169.254.0.0/16 ,fd00::/8", &allow, bad,
                               sizeof bad), 0);
  ASSERT_EQ(allow.n, 4);
  ASSERT_EQ(kk_net_allow_parse("127.0.0.1/32,nonsense", &allow, bad, sizeof bad), KK_EINVAL);
  ASSERT_STR_EQ(bad, "nonsense");
  ASSERT_EQ(kk_net_allow_parse("127.0.0.1/32, 10.0.0.0/8,169.254.0.0/16 ,fd00::/8", &allow, bad,
                               sizeof bad), 0);
  static const struct {
    const char *ip;
    int ok;
  } t[] = {
      {"127.0.0.1", 1},       {"::ffff:127.0.0.1", 1}, {"127.0.0.2", 0},
      {"::1", 0},             {"10.9.9.9", 1},         {"192.168.0.1", 0},
      {"169.254.1.1", 1},     {"169.254.169.254", 0},  /* a wider range does not open it */
      {"fd00:ec2::254", 0},   {"fd00::1", 1},          {"8.8.8.8", 1},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct kk_ip ip;
    ASSERT_EQ(kk_ip_parse(t[i].ip, &ip), 0);
    const char *why = NULL;
    if (kk_net_allowed(&allow, &ip, &why) != t[i].ok)
      kk_test_fail(__FILE__, __LINE__, "%s: want %d", t[i].ip, t[i].ok);
  }
  /* Only a range of exactly the metadata address allows it. */
  ASSERT_EQ(kk_net_allow_parse("169.254.169.254/32", &allow, bad, sizeof bad), 0);
  struct kk_ip md;
  ASSERT_EQ(kk_ip_parse("::ffff:169.254.169.254", &md), 0);
  ASSERT_EQ(kk_net_allowed(&allow, &md, NULL), 1);
  ASSERT_EQ(kk_net_allowed(NULL, &md, NULL), 0);
}

KK_TEST(net_sockaddr) {
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
  char text[64];
  const char *why = NULL;
  ASSERT_EQ(kk_net_sockaddr_allowed(NULL, (struct sockaddr *)&s6, text, sizeof text, &why), 0);
  ASSERT_STR_EQ(text, "::ffff:127.0.0.1");
  ASSERT_STR_EQ(why, "loopback");
  struct sockaddr_in s4 = {.sin_family = AF_INET};
  inet_pton(AF_INET, "1.1.1.1", &s4.sin_addr);
  ASSERT_EQ(kk_net_sockaddr_allowed(NULL, (struct sockaddr *)&s4, text, sizeof text, &why), 1);
  ASSERT_STR_EQ(text, "1.1.1.1");
}

KK_TEST(net_url_check) {
  struct kk_net_allow allow;
  ASSERT_EQ(kk_net_allow_parse("127.0.0.1/32", &allow, NULL, 0), 0);
  static const struct {
    const char *url, *schemes;
    int allowed_rc, none_rc;   /* with allow, without */
  } t[] = {
      {"https://api.telegram.org", "http,https", 0, 0},
      {"HTTPS://api.vk.com/", "http,https", 0, 0},
      {"http://127.0.0.1:8090", "http,https", 0, KK_EAUTH},
      {"http://127.0.0.2:8090", "http,https", KK_EAUTH, KK_EAUTH},
      {"http://localhost:8090", "http,https", 0, KK_EAUTH},
      {"http://LocalHost.:8090", "http,https", 0, KK_EAUTH},
      {"http://a.localhost", "http,https", 0, KK_EAUTH},
      {"http://localhost.example.com", "http,https", 0, 0},
      {"http://169.254.169.254/latest/meta-data", "http,https", KK_EAUTH, KK_EAUTH},
      {"http://[::1]:80", "http,https", KK_EAUTH, KK_EAUTH},
      {"http://[::ffff:127.0.0.1]:80", "http,https", 0, KK_EAUTH},
      {"http://[fd00:ec2::254]/", "http,https", KK_EAUTH, KK_EAUTH},
      {"http://2130706433/", "http,https", 0, KK_EAUTH},      /* 127.0.0.1 as a number */
      {"http://0x7f.1/", "http,https", 0, KK_EAUTH},
      {"http://10.0.0.1/", "http,https", KK_EAUTH, KK_EAUTH},
      {"http://user:pw@example.com/", "http,https", KK_EAUTH, KK_EAUTH},
      {"http://example.com@127.0.0.1/", "http,https", KK_EAUTH, KK_EAUTH},
      {"ftp://example.com/", "http,https", KK_EINVAL, KK_EINVAL},
      {"file:///etc/passwd", "http,https", KK_EINVAL, KK_EINVAL},
      {"gopher://example.com", "http,https", KK_EINVAL, KK_EINVAL},
      {"http://", "http,https", KK_EINVAL, KK_EINVAL},
      {"http://ex%61mple.com", "http,https", KK_EINVAL, KK_EINVAL},
      {"http://[::1", "http,https", KK_EINVAL, KK_EINVAL},
      {"smtp://mail.example.com:587", "smtp,smtps", 0, 0},
      {"smtp://127.0.0.1:2526/?tls=off", "smtp,smtps", 0, KK_EAUTH},
      {"http://mail.example.com", "smtp,smtps", KK_EINVAL, KK_EINVAL},
      {"8.8.8.8", "http,https", KK_EINVAL, KK_EINVAL},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    char why[200];
    int a = kk_net_url_check(t[i].url, t[i].schemes, &allow, why, sizeof why);
    int b = kk_net_url_check(t[i].url, t[i].schemes, NULL, why, sizeof why);
    if (a != t[i].allowed_rc || b != t[i].none_rc)
      kk_test_fail(__FILE__, __LINE__, "%s: %d/%d, want %d/%d (%s)", t[i].url, a, b,
                   t[i].allowed_rc, t[i].none_rc, why);
  }
}
