/* SPDX-License-Identifier: MIT */
/*
 * The callback listener's rate per client address: a token bucket per IPv4 address, or per
 * IPv6 /64 (one host holds a whole /64, so a finer key would not bound it), of
 * LK_CALLBACK_RATE_BURST connections and requests at once, refilling at
 * LK_CALLBACK_RATE_PER_MINUTE. At most LK_CALLBACK_CLIENTS_MAX addresses are tracked; full
 * buckets are forgotten to make room, and beyond that every new address is refused until
 * one refills (docs/SECURITY.md).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define LK_CALLBACK_RATE_BURST 20
#define LK_CALLBACK_RATE_PER_MINUTE 20
#define LK_CALLBACK_CLIENTS_MAX 4096

struct lk_callback_rate;

int lk_callback_rate_new(struct lk_callback_rate **ret);
void lk_callback_rate_free(struct lk_callback_rate *g);

/* Takes one from the bucket of addr's client at now_ms: true, or false when it is empty. */
bool lk_callback_rate_take(struct lk_callback_rate *g, const struct sockaddr *addr,
                           int64_t now_ms);
