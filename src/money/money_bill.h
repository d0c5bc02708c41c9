/*
 * money_bill.h - which failures a provider does not bill. An attempt is
 * charged when its provider accepts it; when it then fails in one of these
 * ways, its charge is given back (a "refund" in the transaction log). Pure.
 *
 *   sms        a receipt with state REJECTD (the SMSC refused the message
 *              and never passed it to the network), or a submit_sm_resp
 *              error; UNDELIV, EXPIRED and the others are billed: the
 *              network tried to deliver them.
 *   email      none: a bounce is billed.
 *   messengers any failure after the provider accepted it (they bill
 *              messages delivered, not the ones they failed).
 */
#ifndef MONEY_BILL_H
#define MONEY_BILL_H

/* 1 when a failure of an attempt on channel with error (NULL: none given)
   is not billed by its provider, else 0. */
int money_unbilled(const char *channel, const char *error);

#endif
