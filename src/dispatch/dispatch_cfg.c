/*
 * dispatch_cfg.c - an SMS route's settings, from the JSON object the API
 * takes, the store keeps and the settings file's [route NAME] sections give
 * (their values as strings).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "dispatch/dispatch.h"

/* A route's name: 1 to max bytes, no control characters, and neither '/'
   (it is a path segment) nor '"' (it is quoted in metrics). */
static int valid_route_name(const char *s, size_t max) {
  static const char refused[] = "/\"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"
                                "\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a"
                                "\x1b\x1c\x1d\x1e\x1f";
  size_t n = strlen(s);
  return n > 0 && n <= max && strcspn(s, refused) == n;
}

static int get_int(json_t *obj, const char *key, int def, int lo, int hi, int *out) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL || json_is_null(v)) {
    *out = def;
    return 0;
  }
  long long x;
  if (json_is_integer(v)) {
    x = json_integer_value(v);
  } else if (json_is_string(v)) {
    char *end;
    x = strtoll(json_string_value(v), &end, 0);
    if (*end || !*json_string_value(v)) return KK_EINVAL;
  } else {
    return KK_EINVAL;
  }
  if (x < lo || x > hi) return KK_EINVAL;
  *out = (int)x;
  return 0;
}

static int get_str(json_t *obj, const char *key, char *out, size_t cap, int required) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL || json_is_null(v)) {
    out[0] = '\0';
    return required ? KK_EINVAL : 0;
  }
  if (!json_is_string(v) || json_string_length(v) >= cap) return KK_EINVAL;
  if (required && json_string_length(v) == 0) return KK_EINVAL;
  snprintf(out, cap, "%s", json_string_value(v));
  return 0;
}

int dispatch_route_cfg_parse(json_t *o, const char *name, struct dispatch_route_cfg *cfg,
                             char *err, size_t errcap) {
  memset(cfg, 0, sizeof *cfg);
  struct smpp_client_cfg *s = &cfg->smpp;
  if (!valid_route_name(name, sizeof s->name - 1)) {
    snprintf(err, errcap, "name: 1 to 63 characters, no '/' or '\"'");
    return KK_EINVAL;
  }
  snprintf(s->name, sizeof s->name, "%s", name);
  json_t *proto = json_object_get(o, "protocol");
  if (proto && (!json_is_string(proto) || strcmp(json_string_value(proto), "smpp") != 0)) {
    snprintf(err, errcap, "protocol: only \"smpp\" is supported");
    return KK_EINVAL;
  }
  int dc = 0;
  if (get_str(o, "host", s->host, sizeof s->host, 1)) {
    snprintf(err, errcap, "host: required, up to 255 characters");
    return KK_EINVAL;
  }
  if (get_int(o, "port", 2775, 1, 65535, &s->port)) {
    snprintf(err, errcap, "port: 1 to 65535");
    return KK_EINVAL;
  }
  if (get_str(o, "system_id", s->system_id, sizeof s->system_id, 0)) {
    snprintf(err, errcap, "system_id: up to 15 characters");
    return KK_EINVAL;
  }
  if (get_str(o, "password", s->password, sizeof s->password, 0)) {
    snprintf(err, errcap, "password: up to 8 characters");
    return KK_EINVAL;
  }
  if (get_str(o, "system_type", s->system_type, sizeof s->system_type, 0)) {
    snprintf(err, errcap, "system_type: up to 12 characters");
    return KK_EINVAL;
  }
  if (get_int(o, "sessions", 1, 1, 64, &s->sessions)) {
    snprintf(err, errcap, "sessions: 1 to 64");
    return KK_EINVAL;
  }
  if (get_int(o, "window", 10, 1, 10000, &s->window)) {
    snprintf(err, errcap, "window: 1 to 10000");
    return KK_EINVAL;
  }
  json_t *sps = json_object_get(o, "max_sps");
  if (json_is_object(sps)) {
    /* per lane: {"stream": N, "bulk": N}; the session itself unlimited */
    static const char *lanes[DISPATCH_LANE_COUNT] = {"stream", "bulk"};
    const char *key;
    json_t *v;
    json_object_foreach(sps, key, v) {
      if (strcmp(key, "stream") != 0 && strcmp(key, "bulk") != 0) {
        snprintf(err, errcap, "max_sps: a number, or {\"stream\": N, \"bulk\": N}");
        return KK_EINVAL;
      }
    }
    for (int l = 0; l < DISPATCH_LANE_COUNT; l++)
      if (get_int(sps, lanes[l], 0, 0, 1000000, &cfg->lane_sps[l])) {
        snprintf(err, errcap, "max_sps.%s: 0 (unlimited) to 1000000", lanes[l]);
        return KK_EINVAL;
      }
    s->max_sps = 0;
  } else if (get_int(o, "max_sps", 0, 0, 1000000, &s->max_sps)) {
    snprintf(err, errcap, "max_sps: 0 (unlimited) to 1000000, or {\"stream\": N, \"bulk\": N}");
    return KK_EINVAL;
  }
  if (get_int(o, "data_coding", 0, 0, 255, &dc) || (dc != 0 && dc != 1 && dc != 3)) {
    snprintf(err, errcap, "data_coding: the value for GSM-7 texts, 0 (SMSC default), 1 or 3");
    return KK_EINVAL;
  }
  cfg->gsm_data_coding = (uint8_t)dc;
  if (get_int(o, "enquire_link", 30, 1, 3600, &s->enquire_link_s) ||
      get_int(o, "resp_timeout_ms", 10000, 100, 600000, &s->resp_timeout_ms) ||
      get_int(o, "throttle_pause_ms", 1000, 1, 600000, &s->throttle_pause_ms) ||
      get_int(o, "reconnect_min_ms", 500, 10, 600000, &s->reconnect_min_ms) ||
      get_int(o, "reconnect_max_ms", 30000, 10, 3600000, &s->reconnect_max_ms)) {
    snprintf(err, errcap, "a timing setting is out of range");
    return KK_EINVAL;
  }
  return dispatch_prices_parse(o, &cfg->prices, err, errcap);
}

json_t *dispatch_route_cfg_json(const struct dispatch_route_cfg *cfg) {
  const struct smpp_client_cfg *s = &cfg->smpp;
  json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
                        "protocol", "smpp", "host", s->host, "port", s->port, "system_id",
                        s->system_id, "password", s->password, "system_type", s->system_type,
                        "sessions", s->sessions, "window", s->window, "data_coding",
                        cfg->gsm_data_coding, "enquire_link", s->enquire_link_s,
                        "resp_timeout_ms", s->resp_timeout_ms, "throttle_pause_ms",
                        s->throttle_pause_ms, "reconnect_min_ms", s->reconnect_min_ms,
                        "reconnect_max_ms", s->reconnect_max_ms);
  if (cfg->lane_sps[DISPATCH_LANE_STREAM] || cfg->lane_sps[DISPATCH_LANE_BULK])
    json_object_set_new(o, "max_sps", json_pack("{s:i, s:i}", "stream",
                                                cfg->lane_sps[DISPATCH_LANE_STREAM], "bulk",
                                                cfg->lane_sps[DISPATCH_LANE_BULK]));
  else
    json_object_set_new(o, "max_sps", json_integer(s->max_sps));
  dispatch_prices_json(&cfg->prices, o);
  return o;
}

