/*
 * sim_main.c - kaskad-sim: command line, event loop and clean shutdown of
 * the provider simulator (an SMSC speaking SMPP 3.4, fake messenger
 * providers on the HTTP port, an SMTP sink, and the HTTP control API).
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_net.h"
#include "http/http_client.h"
#include "sim_chan.h"
#include "sim_http.h"
#include "sim_knobs.h"
#include "sim_ring.h"
#include "sim_smsc.h"
#include "sim_smtp.h"

static const char usage[] =
    "usage: kaskad-sim [options]\n"
    "\n"
    "Simulates kaskad's providers for its demos and tests: an SMSC (SMPP 3.4\n"
    "server), the messenger APIs of VK, Viber, Telegram, Telegram Gateway and\n"
    "WhatsApp (on the HTTP port, with signed status callbacks), and an SMTP\n"
    "sink; with an HTTP API to steer them and to inspect what they received.\n"
    "\n"
    "options:\n"
    "  --smpp ADDR        SMPP listen address (default 127.0.0.1:2776)\n"
    "  --http ADDR        HTTP control API and provider address\n"
    "                     (default 127.0.0.1:8090)\n"
    "  --smtp ADDR        SMTP sink address (default 127.0.0.1:2526)\n"
    "  --seed N           seed for outcome and error draws and message ids\n"
    "                     (default: from the clock; logged at start)\n"
    "  --accounts LIST    accept binds only from these, as id:password,...\n"
    "                     (default: any system_id and password)\n"
    "  --knobs JSON       initial knobs, as for POST /config\n"
    "  --channels JSON    initial channel knobs, as for POST /channels/config\n"
    "  --log-level L      debug, info, warn or error (default info)\n"
    "  --help             this text\n"
    "\n"
    "ADDR is IPv4:port or [IPv6]:port.\n"
    "\n"
    "Destinations that force an outcome, whatever the knobs say:\n"
    "  ...0000            accepted, then receipt stat:UNDELIV err:001\n"
    "  ...0001            refused with ESME_RINVDSTADR\n"
    "\n"
    "HTTP API:\n"
    "  GET  /healthz      200 ok\n"
    "  GET  /stats        counters\n"
    "  GET  /config       knobs; POST /config sets any subset of them:\n"
    "                     delivered, undeliverable, expired (outcome shares),\n"
    "                     dlr_delay_ms [min,max], throttle, queue_full, syserr,\n"
    "                     reject (error shares 0..1), max_sps, disconnect_after,\n"
    "                     resp_delay_ms, message_id (hex|dec), receipt_tlvs,\n"
    "                     receipt_id (same|alt), receipt_retry_ms, receipt_attempts\n"
    "  GET  /submits      received submits; ?dest=&system_id=&since=ms&limit=100\n"
    "  POST /mo           {\"from\",\"to\",\"text\",\"system_id\"?} sends an MO\n"
    "  POST /reset        zero counters, clear recorded submits, channel requests\n"
    "                     and pending callbacks; {\"apps\":true} also forgets apps\n"
    "  GET  /hlr?phone=   HLR/MNP lookup: {\"phone\",\"ported\",\"operator\"?,\"inn\"?,\"roaming\"}\n"
    "  POST /hlr/config   {\"ported\":{phone:{\"operator\",\"inn\"}},\"roaming\":[phone],\"down\"}\n"
    "  GET  /hlr/stats    {\"lookups\"}\n"
    "\n"
    "Channels (fake providers, same port, each provider's own paths and formats):\n"
    "  POST /method/messages.send               VK\n"
    "  POST /method/execute                     VK, up to 25 API.messages.send calls\n"
    "  POST /pa/set_webhook, /pa/send_message   Viber bot\n"
    "  POST /vbm/v1/messages                    Viber business (partner API)\n"
    "  POST /bot<token>/setWebhook|sendMessage|sendPhoto|getMe\n"
    "                                           Telegram Bot API\n"
    "  POST /sendVerificationMessage            Telegram Gateway\n"
    "  POST /v<N>.<M>/<phone_number_id>/messages  WhatsApp Cloud API\n"
    "  GET  /apps         provider apps; POST /apps {\"channel\",\"token\",\n"
    "                     \"callback_url\"?,\"secret\"?,\"group_id\"?,\"confirmation\"?,\n"
    "                     \"verify_token\"?,\"phone_number_id\"?} adds or updates one\n"
    "                     (VK apps are confirmed, WhatsApp webhooks verified first);\n"
    "                     a callback_url of several URLs separated by spaces takes\n"
    "                     them in turn, as a load balancer in front of them would\n"
    "  GET  /channels/config  per-channel knobs; POST sets any subset:\n"
    "                     {\"vk\":{\"reach\",\"read\",\"deliver_ms\":[min,max],\n"
    "                     \"read_ms\":[min,max],\"throttle\",\"server_error\",\"fail\"},...}\n"
    "                     for vk, viber, telegram, telegram_gateway, whatsapp, email\n"
    "  GET  /channels/requests  received provider requests and mails;\n"
    "                     ?channel=&since_seq=&limit=100\n"
    "  GET  /channels/stats     per-channel counters\n"
    "  POST /telegram/update    {\"token\",\"chat_id\",\"text\"} posts to the bot webhook\n"
    "  POST /whatsapp/inbound   {\"token\",\"from\",\"text\"?} opens the 24-hour window\n"
    "  POST /viber/inbound      {\"token\",\"user_id\",\"text\"} a signed message event\n"
    "                     and posts the inbound message webhook\n"
    "  POST /vk/inbound         {\"token\",\"user_id\",\"text\"} a message_new event (user_id\n"
    "                     a number) to the community's callback URL\n"
    "\n"
    "SMTP sink: any AUTH passes; recipients \"nobody@...\", \"...@invalid.test\" and\n"
    "those not reached under the email reach knob get 550.\n";

struct app {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  int signals_on;
  int stopping;
  struct sim_smsc *smsc;
  struct sim_http *http;
  struct sim_chan *chan;
  struct sim_smtp *smtp;
  struct sim_hlr *hlr;
};

/* Parses "1.2.3.4:port" or "[::1]:port". Returns 0 or KK_EINVAL. */
static int parse_addr(const char *s, struct sockaddr_storage *out) {
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s) return KK_EINVAL;
  char host[64];
  size_t n = (size_t)(colon - s);
  if (n >= sizeof host) return KK_EINVAL;
  memcpy(host, s, n);
  host[n] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || colon[1] == '\0' || port < 1 || port > 65535) return KK_EINVAL;
  memset(out, 0, sizeof *out);
  if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
    host[n - 1] = '\0';
    return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out) ? KK_EINVAL : 0;
  }
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) ? KK_EINVAL : 0;
}

static void stop(struct app *a) {
  if (a->stopping) return;
  a->stopping = 1;
  /* The channel module first: it answers the requests it holds, which the
     HTTP server must resume before it stops. */
  if (a->chan) sim_chan_stop(a->chan);
  if (a->smtp) sim_smtp_stop(a->smtp);
  if (a->http) sim_http_stop(a->http);
  if (a->smsc) sim_smsc_stop(a->smsc);
  if (a->signals_on) {
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  struct app *a = h->data;
  kk_info("sim", "%s received, stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
  stop(a);
}

int main(int argc, char **argv) {
  const char *smpp_addr = "127.0.0.1:2776";
  const char *http_addr = "127.0.0.1:8090";
  const char *smtp_addr = "127.0.0.1:2526";
  const char *channels_json = NULL;
  const char *accounts = NULL;
  const char *knobs_json = NULL;
  uint64_t seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
  static const struct option longopts[] = {
    {"smpp", required_argument, NULL, 's'},
    {"http", required_argument, NULL, 'H'},
    {"smtp", required_argument, NULL, 'm'},
    {"channels", required_argument, NULL, 'c'},
    {"seed", required_argument, NULL, 'S'},
    {"accounts", required_argument, NULL, 'a'},
    {"knobs", required_argument, NULL, 'k'},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  int opt;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (opt) {
    case 's': smpp_addr = optarg; break;
    case 'H': http_addr = optarg; break;
    case 'm': smtp_addr = optarg; break;
    case 'c': channels_json = optarg; break;
    case 'a': accounts = optarg; break;
    case 'k': knobs_json = optarg; break;
    case 'S': {
      char *end;
      seed = strtoull(optarg, &end, 10);
      if (*end != '\0' || optarg[0] == '\0' || optarg[0] == '-') {
        fprintf(stderr, "kaskad-sim: --seed needs a non-negative integer\n");
        return 2;
      }
      break;
    }
    case 'l': {
      int lvl = kk_log_parse_level(optarg);
      if (lvl < 0) {
        fprintf(stderr, "kaskad-sim: unknown log level \"%s\"\n", optarg);
        return 2;
      }
      kk_log_level = (enum kk_log_level)lvl;
      break;
    }
    case 'h':
      fputs(usage, stdout);
      return 0;
    default:
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "kaskad-sim: unexpected argument \"%s\"\n", argv[optind]);
    return 2;
  }

  struct sockaddr_storage smpp_sa, http_sa, smtp_sa;
  if (parse_addr(smpp_addr, &smpp_sa) || parse_addr(http_addr, &http_sa) ||
      parse_addr(smtp_addr, &smtp_sa)) {
    fprintf(stderr, "kaskad-sim: addresses must be IPv4:port or [IPv6]:port\n");
    return 2;
  }
  struct sim_knobs knobs;
  sim_knobs_defaults(&knobs);
  if (knobs_json) {
    json_error_t jerr;
    struct sim_knob_err kerr;
    json_t *j = json_loads(knobs_json, 0, &jerr);
    if (j == NULL) {
      fprintf(stderr, "kaskad-sim: --knobs: %s\n", jerr.text);
      return 2;
    }
    int rc = sim_knobs_apply(&knobs, j, &kerr);
    json_decref(j);
    if (rc) {
      fprintf(stderr, "kaskad-sim: --knobs: %s\n", kerr.message);
      return 2;
    }
  }

  signal(SIGPIPE, SIG_IGN);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "kaskad-sim: cannot initialise libcurl\n");
    return 1;
  }
  /* The simulator posts callbacks to whatever webhook the test or the demo
     registered, kaskad on loopback included: every range is allowed. */
  struct kk_net_allow anywhere;
  kk_net_allow_parse("0.0.0.0/0,::/0", &anywhere, NULL, 0);
  http_client_allow(&anywhere);
  struct app a;
  memset(&a, 0, sizeof a);
  uv_loop_init(&a.loop);
  char cherr[200];
  int crc = sim_chan_start(&a.loop, seed, channels_json, cherr, sizeof cherr, &a.chan);
  a.hlr = sim_hlr_new();
  if (crc == KK_EINVAL) {
    fprintf(stderr, "kaskad-sim: --channels: %s\n", cherr);
    uv_loop_close(&a.loop);
    curl_global_cleanup();
    return 2;
  }
  struct sim_ring ring;
  sim_ring_init(&ring, SIM_RING_CAP);
  int status = 0;

  struct sim_smsc_opts so = {
    .addr = (const struct sockaddr *)&smpp_sa,
    .accounts = accounts,
    .seed = seed,
    .knobs = &knobs,
    .ring = &ring,
  };
  int rc = sim_smsc_start(&a.loop, &so, &a.smsc);
  if (crc != 0) {
    kk_error("sim", "cannot start the channel module: %s", cherr);
    status = 1;
  } else if (rc == KK_EINVAL) {
    fprintf(stderr, "kaskad-sim: --accounts must be id:password,... (id up to 15, "
                    "password up to 8 characters)\n");
    status = 2;
  } else if (rc) {
    kk_error("sim", "cannot start the SMSC on %s", smpp_addr);
    status = 1;
  } else {
    struct sim_http_opts ho = {
      .addr = (const struct sockaddr *)&http_sa,
      .smsc = a.smsc,
      .knobs = &knobs,
      .ring = &ring,
      .chan = a.chan,
      .hlr = a.hlr,
    };
    struct sim_smtp_opts mo = {
      .addr = (const struct sockaddr *)&smtp_sa,
      .chan = a.chan,
    };
    if (sim_http_start(&a.loop, &ho, &a.http) != 0) {
      kk_error("sim", "cannot start the HTTP API on %s", http_addr);
      status = 1;
    } else if (sim_smtp_start(&a.loop, &mo, &a.smtp) != 0) {
      kk_error("sim", "cannot start the SMTP sink on %s", smtp_addr);
      status = 1;
    }
  }

  if (status == 0) {
    uv_signal_init(&a.loop, &a.sigint);
    uv_signal_init(&a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    a.signals_on = 1;
    kk_info("sim", "SMSC on %s, HTTP API on %s, SMTP on %s, seed %" PRIu64, smpp_addr,
            http_addr, smtp_addr, seed);
  } else {
    stop(&a);
  }
  uv_run(&a.loop, UV_RUN_DEFAULT);

  if (a.http) sim_http_free(a.http);
  if (a.smtp) sim_smtp_free(a.smtp);
  if (a.smsc) sim_smsc_free(a.smsc);
  sim_chan_free(a.chan);
  sim_hlr_free(a.hlr);
  sim_ring_fini(&ring);
  if (uv_loop_close(&a.loop) != 0) kk_warnx("sim", "loop closed with handles still open");
  curl_global_cleanup();
  if (status == 0) kk_info("sim", "stopped");
  return status;
}
