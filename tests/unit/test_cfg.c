/* test_cfg.c - kk_cfg: the config file, its [route] sections, --help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kk_cfg.h"
#include "core/kk_err.h"
#include "kk_test.h"

/* Loads a config file with text as its content; what went to stderr is
   copied into err (cap bytes). Returns kk_cfg_load's result. */
static int load_text(const char *text, struct kk_cfg *cfg, char *err, size_t cap) {
  char path[] = "/tmp/kk-cfg-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char errpath[] = "/tmp/kk-cfg-err-XXXXXX";
  int efd = mkstemp(errpath);
  ASSERT(efd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(efd, 2);
  char *argv[] = {"kaskad", "--config", path, NULL};
  int rc = kk_cfg_load(cfg, 3, argv);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(efd, err, cap - 1, 0);
  err[n > 0 ? n : 0] = '\0';
  close(efd);
  unlink(errpath);
  unlink(path);
  return rc;
}

KK_TEST(cfg_file_and_route_keys) {
  struct kk_cfg cfg;
  char err[1024];
  ASSERT_EQ(load_text("# a comment\nhttp_timeout = 20s\n[route main]\nhost = 127.0.0.1\n"
                      "port = 2775\nsystem_id = shop\n",
                      &cfg, err, sizeof err),
            0);
  ASSERT_STR_EQ(kk_cfg_get(&cfg, KK_CFG_http_timeout), "20s");
  ASSERT_EQ(cfg.nroutes, 1);
  ASSERT_EQ(cfg.routes[0].nkeys, 3);
  ASSERT_STR_EQ(cfg.routes[0].keys[2], "system_id");
  kk_cfg_fini(&cfg);
}

KK_TEST(cfg_unknown_setting_names_file_line_key) {
  struct kk_cfg cfg;
  char err[1024];
  ASSERT_EQ(load_text("http = 127.0.0.1:1\n\nhtp_timeout = 5s\n", &cfg, err, sizeof err),
            KK_EINVAL);
  ASSERT(strstr(err, ":3: unknown setting htp_timeout") != NULL);
  ASSERT(strstr(err, "/tmp/kk-cfg-test-") != NULL);
  kk_cfg_fini(&cfg);
}

KK_TEST(cfg_unknown_route_key_names_file_line_key) {
  struct kk_cfg cfg;
  char err[1024];
  ASSERT_EQ(load_text("[route mts]\nhost = smpp.example.net\nmax_tps = 200\n", &cfg, err,
                      sizeof err),
            KK_EINVAL);
  ASSERT(strstr(err, ":3: unknown key max_tps in [route mts]") != NULL);
  kk_cfg_fini(&cfg);
  ASSERT_EQ(load_text("[route mts]\nhost = a\nhost = b\n", &cfg, err, sizeof err), KK_EINVAL);
  ASSERT(strstr(err, ":3: host given twice in [route mts]") != NULL);
  kk_cfg_fini(&cfg);
}
