/*
 * link_preview.h - which fetches of a tracked link are link previews, not
 * people: messengers and social networks fetch a link sent in a message to
 * draw its card (title, picture) before anyone taps it. Such a fetch is
 * still redirected but is not a click. Pure.
 *
 * A preview is a HEAD request, or a user agent that names a known preview
 * fetcher (TelegramBot, WhatsApp, Viber, vkShare, facebookexternalhit,
 * Facebot, Twitterbot, Slackbot, Discordbot, SkypeUriPreview,
 * Google-PageRenderer, LinkedInBot, Pinterest, redditbot, Embedly,
 * Iframely, YandexBot and the like, in any letter case) or has a generic
 * robot's form: a word ending in "bot" or "Bot" before '/', '-', ';', ')',
 * ',' or the end (Googlebot/2.1, AhrefsBot; not a phone model such as
 * CUBOT X30 or Cubot_P30), "crawler", "spider" or "preview" in any case,
 * or "+http" (a robot's page given in its user agent).
 */
#ifndef LINK_PREVIEW_H
#define LINK_PREVIEW_H

/* 1 when a request with this method and user agent (NULL: none) is a link
   preview, 0 when it may be a person. */
int link_preview(const char *method, const char *user_agent);

#endif
