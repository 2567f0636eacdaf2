/*
 * rcpt.h - the RCPT decision: may this recipient be accepted? One
 * function serves the daemon's RCPT hook and `arcrelay survive`, so the
 * tool refuses exactly what the daemon refuses.
 */
#ifndef ARCRELAY_RCPT_H
#define ARCRELAY_RCPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * rcpt_check - accept only what a rule claims (never an open relay): a
 * list (from a sender it allows), a list's NAME-bounces[+...] address
 * (from anyone: bounces), a forward, a valid SRS address, a
 * [domain] block, or anything from a loopback client under the embedded
 * default. Routing tricks in the local part and trailing-dot or literal
 * domains are refused whoever asks. False with a complete SMTP reply
 * ("550 5.7.1 ...") in reply.
 */
bool rcpt_check(const struct relay_config *cfg, bool loopback,
    const char *sender, const char *rcpt, int64_t now, char *reply,
    size_t replylen);

#endif
