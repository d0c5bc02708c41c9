/*
 * link_preview.c - link previews told from people (see link_preview.h).
 */
#include "link/link_preview.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Known preview fetchers, lower case: found anywhere in the user agent. */
static const char *const fetchers[] = {
    "telegrambot", "whatsapp", "viber", "vkshare", "facebookexternalhit", "facebot",
    "twitterbot", "slackbot", "slack-imgproxy", "discordbot", "skypeuripreview",
    "google-pagerenderer", "linkedinbot", "pinterest", "redditbot", "embedly", "iframely",
    "yandexbot", "yandex.com/bots", "mail.ru_bot", "odklbot", "applebot", "bitlybot",
    "crawler", "spider", "preview", "+http", NULL,
};

/* Whether needle (lower case) is in s, in any letter case. */
static int has(const char *s, const char *needle) {
  size_t n = strlen(needle);
  for (; *s; s++)
    if (strncasecmp(s, needle, n) == 0) return 1;
  return 0;
}

/* A word ending in "bot" or "Bot" (as written) before one of the
   characters that end a product's name, or the end. */
static int generic_bot(const char *s) {
  for (const char *p = s; (p = strstr(p, "ot")) != NULL; p++) {
    if (p == s || (p[-1] != 'b' && p[-1] != 'B')) continue;
    char c = p[2];
    if (c == '\0' || c == '/' || c == '-' || c == ';' || c == ')' || c == ',')
      return 1;
  }
  return 0;
}

int link_preview(const char *method, const char *user_agent) {
  if (method && strcmp(method, "HEAD") == 0) return 1;
  if (user_agent == NULL || user_agent[0] == '\0') return 0;
  for (int i = 0; fetchers[i]; i++)
    if (has(user_agent, fetchers[i])) return 1;
  return generic_bot(user_agent);
}
