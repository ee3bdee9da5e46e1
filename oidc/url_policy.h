/* SPDX-License-Identifier: MIT */
/*
 * Which URLs latchkey talks to (SPEC §3, §5): an absolute http(s) URL with a
 * host, no user name or password, no #fragment, and https unless the host is
 * a loopback address. One policy for the config's endpoints and the ones a
 * discovery document names.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "oidc/error.h"

/* localhost, 127.0.0.0/8, [::1] or [::ffff:127.x.y.z], as curl hands hosts back. */
bool lk_host_is_loopback(const char *host);

/*
 * Checks url against the policy, parsed by curl (the library that will fetch
 * it), never by us. On refusal writes why into why (quoting the URL, unless it
 * holds an '@' and so maybe a password; without the key's name). Returns 0,
 * -LK_ERR_CONFIG or -LK_ERR_NOMEM.
 */
int lk_url_check(const char *url, char *why, size_t why_size);

/* The same with "what: why" in e; an empty or NULL url is refused too. */
int lk_check_endpoint_url(const char *url, const char *what, struct lk_error *e);
