/* SPDX-License-Identifier: MIT */
/*
 * What the callback listener takes of one request's target ("/path?query" as the browser
 * sent it, not decoded): network-free, so a fuzzer drives it (tests/fuzz/fuzz_callback.c).
 */
#pragma once

#include <stddef.h>

#include "oidc/error.h"

/*
 * 0 when target's path is path exactly (byte for byte: no decoding, no dot segments, no
 * trailing slash added) and a query follows it; *ret_query points into target, after the
 * '?', up to any '#' (*ret_len bytes). -LK_ERR_NOT_FOUND for anything else.
 */
int lk_callback_target(const char *target, const char *path, const char **ret_query,
                       size_t *ret_len);

/*
 * The whole check before a login is looked up: the target (lk_callback_target), then the
 * state of its query (lk_answer_query_state). 0 with *ret_state (a secret) and *ret_query as
 * above; -LK_ERR_NOT_FOUND when it is not a callback at all; LK_ERR_INVALID_ARGUMENT when its
 * query cannot be read or carries no state.
 */
int lk_callback_request_state(const char *target, const char *path, const char **ret_query,
                              size_t *ret_len, char **ret_state, struct lk_error *e);
