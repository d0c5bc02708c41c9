/*
 * test_link_preview.c - link previews told from people
 * (link/link_preview.h).
 */
#include "kk_test.h"
#include "link/link_preview.h"

KK_TEST(link_preview_known_fetchers) {
  static const char *const bots[] = {
      "TelegramBot (like TwitterBot)",
      "WhatsApp/2.23.20.0 A",
      "Viber/21.6.0 CFNetwork/1410.0.3 Darwin/22.6.0",
      "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
      "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
      "Twitterbot/1.0",
      "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
      "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
      "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; "
      "Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/))",
      "Mozilla/5.0 (compatible; Googlebot/2.1)",
      "Mozilla/5.0 (compatible; AhrefsBot)",
      "SomeLinkPreview/1.0",
      "bot",
      "mybot,1.0",
      "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
      "python-crawler",
      NULL,
  };
  for (int i = 0; bots[i]; i++) {
    if (!link_preview("GET", bots[i])) kk_test_fail(__FILE__, __LINE__, "not a preview: %s", bots[i]);
  }
}

KK_TEST(link_preview_people_and_head) {
  static const char *const people[] = {
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
      "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 Chrome/119.0 Mobile",
      "Mozilla/5.0 (Linux; Android 9; Cubot_P30) AppleWebKit/537.36 Chrome/119.0",
      "Mozilla/5.0 (Linux; Android 13; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/119.0 Mobile Safari/537.36 Telegram-Android/10.2.0",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/120.0",
      "TestPhone/1.0",
      "Robotics fan browser",
      "",
      NULL,
  };
  for (int i = 0; people[i]; i++) {
    if (link_preview("GET", people[i])) kk_test_fail(__FILE__, __LINE__, "a preview: %s", people[i]);
  }
  ASSERT(!link_preview("GET", NULL));
  ASSERT(link_preview("HEAD", NULL));
  ASSERT(link_preview("HEAD", "Mozilla/5.0 (Windows NT 10.0) Firefox/120.0"));
}
