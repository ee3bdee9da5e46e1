/* SPDX-License-Identifier: MIT */
/*
 * Whether the provider can be reached now: one GET of its discovery document, answered
 * when it ends. The offline PIN stands in for a web sign-in only when this says no, by the
 * ProviderUnavailable class of failure (network, TLS, timeout, 5xx): a provider that answers
 * at all, even with a refusal, is reachable.
 */
#pragma once

#include "oidc/config.h"
#include "oidc/error.h"
#include "oidc/http.h"

/* reachable: true or false; r < 0 (with e) when it could not be asked. */
typedef void (*lk_reach_fn)(void *userdata, int r, bool reachable, const struct lk_error *e);

int lk_reach_probe(struct lk_http *h, const struct lk_config *c, lk_reach_fn done,
                   void *userdata, struct lk_error *e);
