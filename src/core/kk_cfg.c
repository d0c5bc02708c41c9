/* kk_cfg.c - settings from defaults, file, environment, flags (see kk_cfg.h). */
#include "core/kk_cfg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

static const char *const names[] = {
#define X(name, def, help) #name,
    KK_CFG_SETTINGS(X)
#undef X
};
static const char *const defaults[] = {
#define X(name, def, help) def,
    KK_CFG_SETTINGS(X)
#undef X
};
static const char *const helps[] = {
#define X(name, def, help) help,
    KK_CFG_SETTINGS(X)
#undef X
};

/* The key named name[0..len) ('-' and '_' alike, any case), or -1 when no
   key has that name: "none", not an error code. */
static int find_key(const char *name, size_t len) {
  for (int i = 0; i < KK_CFG__COUNT; i++) {
    if (strlen(names[i]) != len) continue;
    int same = 1;
    for (size_t j = 0; j < len && same; j++) {
      char c = name[j] == '-' ? '_' : (char)tolower((unsigned char)name[j]);
      same = c == names[i][j];
    }
    if (same) return i;
  }
  return -1;
}

static const char *const route_keys[KK_CFG_ROUTE_NKEYS] = {KK_CFG_ROUTE_KEYS};

static int route_key_known(const char *k) {
  for (int i = 0; i < KK_CFG_ROUTE_NKEYS; i++)
    if (strcmp(k, route_keys[i]) == 0) return 1;
  return 0;
}

static void set(struct kk_cfg *cfg, int key, const char *v) {
  free(cfg->value[key]);
  cfg->value[key] = kk_xstrdup(v);
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

static int load_file(struct kk_cfg *cfg, const char *path, int required) {
  FILE *f = fopen(path, "r");
  if (!f) {
    if (!required) return 0;
    fprintf(stderr, "kaskad: cannot read config file %s\n", path);
    return KK_EINVAL;
  }
  char line[1024];
  int lineno = 0;
  struct kk_cfg_route *route = NULL;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = trim(line);
    if (!*s) continue;
    if (*s == '[') {
      char name[64];
      if (sscanf(s, "[route %63[^]]]", name) != 1) {
        fprintf(stderr, "kaskad: %s:%d: unknown section %s\n", path, lineno, s);
        fclose(f);
        return KK_EINVAL;
      }
      if (cfg->nroutes == KK_CFG_MAX_ROUTES) {
        fprintf(stderr, "kaskad: %s:%d: too many routes\n", path, lineno);
        fclose(f);
        return KK_EINVAL;
      }
      route = &cfg->routes[cfg->nroutes++];
      memset(route, 0, sizeof *route);
      snprintf(route->name, sizeof route->name, "%s", trim(name));
      continue;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "kaskad: %s:%d: expected name = value\n", path, lineno);
      fclose(f);
      return KK_EINVAL;
    }
    *eq = '\0';
    char *k = trim(s), *v = trim(eq + 1);
    if (route) {
      if (!route_key_known(k)) {
        fprintf(stderr, "kaskad: %s:%d: unknown key %s in [route %s] (known: host, port, "
                "system_id, password, system_type, sessions, window, max_sps, data_coding, "
                "enquire_link, resp_timeout_ms, throttle_pause_ms, reconnect_min_ms, "
                "reconnect_max_ms)\n", path, lineno, k, route->name);
        fclose(f);
        return KK_EINVAL;
      }
      int dup = 0;
      for (int i = 0; i < route->nkeys; i++) dup |= strcmp(route->keys[i], k) == 0;
      if (dup || route->nkeys == 16) {
        fprintf(stderr, "kaskad: %s:%d: %s given twice in [route %s]\n", path, lineno, k,
                route->name);
        fclose(f);
        return KK_EINVAL;
      }
      snprintf(route->keys[route->nkeys], sizeof route->keys[0], "%s", k);
      snprintf(route->values[route->nkeys], sizeof route->values[0], "%s", v);
      route->nkeys++;
      continue;
    }
    int key = find_key(k, strlen(k));
    if (key < 0) {
      fprintf(stderr, "kaskad: %s:%d: unknown setting %s\n", path, lineno, k);
      fclose(f);
      return KK_EINVAL;
    }
    set(cfg, key, v);
  }
  fclose(f);
  return 0;
}

void kk_cfg_usage(FILE *out) {
  fprintf(out,
          "usage: kaskad [--NAME VALUE]...\n\n"
          "Every setting can be given in the config file as `name = value`,\n"
          "in the environment as KASKAD_NAME, or on the command line as --name VALUE\n"
          "(later wins). Upstream SMS routes are [route NAME] sections of the file\n"
          "with host, port, system_id, password, system_type, sessions, window,\n"
          "max_sps, data_coding, enquire_link, resp_timeout_ms, throttle_pause_ms,\n"
          "reconnect_min_ms and reconnect_max_ms, or are managed with\n"
          "PUT /v1/routes/NAME. An unknown name in the file stops the start.\n\n");
  for (int i = 0; i < KK_CFG__COUNT; i++) {
    char env[64];
    size_t j;
    for (j = 0; names[i][j] && j < sizeof env - 1; j++) env[j] = (char)toupper((unsigned char)names[i][j]);
    env[j] = '\0';
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", names[i]);
    for (char *p = flag; *p; p++)
      if (*p == '_') *p = '-';
    fprintf(out, "  %-20s KASKAD_%-18s %s (default: %s)\n", flag, env, helps[i],
            defaults[i][0] ? defaults[i] : "none");
  }
}

int kk_cfg_load(struct kk_cfg *cfg, int argc, char **argv) {
  memset(cfg, 0, sizeof *cfg);
  for (int i = 0; i < KK_CFG__COUNT; i++) set(cfg, i, defaults[i]);
  /* Flags first into a side table, so that they win over file and env. */
  const char *flags[KK_CFG__COUNT] = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      kk_cfg_usage(stdout);
      return 1;
    }
    if (strncmp(a, "--", 2) != 0) {
      fprintf(stderr, "kaskad: unexpected argument %s (see --help)\n", a);
      return KK_EINVAL;
    }
    const char *name = a + 2, *val = strchr(name, '=');
    size_t nlen = val ? (size_t)(val - name) : strlen(name);
    int key = find_key(name, nlen);
    if (key < 0) {
      fprintf(stderr, "kaskad: unknown option %s (see --help)\n", a);
      return KK_EINVAL;
    }
    if (val) {
      flags[key] = val + 1;
    } else if (i + 1 < argc) {
      flags[key] = argv[++i];
    } else {
      fprintf(stderr, "kaskad: option %s needs a value\n", a);
      return KK_EINVAL;
    }
  }
  /* The config file's own location may come from env or flags. */
  char env[64];
  const char *path = flags[KK_CFG_config] ? flags[KK_CFG_config] : getenv("KASKAD_CONFIG");
  int rc = load_file(cfg, path ? path : defaults[KK_CFG_config], path != NULL);
  if (rc) return rc;
  for (int i = 0; i < KK_CFG__COUNT; i++) {
    size_t j;
    for (j = 0; names[i][j] && j < sizeof env - 8; j++) env[j] = (char)toupper((unsigned char)names[i][j]);
    env[j] = '\0';
    char var[80];
    snprintf(var, sizeof var, "KASKAD_%s", env);
    const char *v = getenv(var);
    if (v) set(cfg, i, v);
  }
  for (int i = 0; i < KK_CFG__COUNT; i++)
    if (flags[i]) set(cfg, i, flags[i]);
  return 0;
}

void kk_cfg_fini(struct kk_cfg *cfg) {
  for (int i = 0; i < KK_CFG__COUNT; i++) {
    free(cfg->value[i]);
    cfg->value[i] = NULL;
  }
}

const char *kk_cfg_get(const struct kk_cfg *cfg, enum kk_cfg_key key) { return cfg->value[key]; }
const char *kk_cfg_name(enum kk_cfg_key key) { return names[key]; }

int kk_parse_duration_ms(const char *s, long long *ms) {
  if (s == NULL || !*s) return KK_EINVAL;
  char *end;
  double v = strtod(s, &end);
  if (end == s || v < 0) return KK_EINVAL;
  double mult = 1000;
  if (strcmp(end, "ms") == 0) mult = 1;
  else if (strcmp(end, "s") == 0 || *end == '\0') mult = 1000;
  else if (strcmp(end, "m") == 0) mult = 60e3;
  else if (strcmp(end, "h") == 0) mult = 3600e3;
  else if (strcmp(end, "d") == 0) mult = 86400e3;
  else return KK_EINVAL;
  if (v * mult > 1e15) return KK_EINVAL;
  *ms = (long long)(v * mult);
  return 0;
}

int kk_parse_hostport(const char *s, char *host, size_t cap, int *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || (size_t)(colon - s) >= cap) return KK_EINVAL;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p < 0 || p > 65535) return KK_EINVAL;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  *port = (int)p;
  return 0;
}
