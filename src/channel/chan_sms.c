/*
 * chan_sms.c - the SMS driver. SMS is submitted over SMPP by dispatch/ on
 * its routes, not by a request of the channel engine's: the driver declares
 * what the channel reports and the settings it takes (an account's token
 * and default sender), and says that its sends are external, so the engine
 * hands each started step to the sender it was given for "sms"
 * (dispatch_sender). Delivery receipts come back through smpp/, not
 * through a webhook, so there is no hook().
 */
#include "channel/chan_int.h"

/* Its settings: the routes themselves are the operator's (PUT /v1/routes). */
static const struct chan_field sms_fields[] = {
    CHAN_FIELD(token, CHAN_FIELD_SECRET),
    CHAN_FIELD(sender, 0),
};

const struct chan_driver chan_sms_driver = {
  .name = "sms",
  CHAN_FIELDS(sms_fields),
  .reports = CHAN_SENT | CHAN_DELIVERED,
  .address_field = NULL,
  .phone_fallback = 0,
  .external = 1,
};
