/* SPDX-License-Identifier: MIT */
/* What the person pasted after signing in: a bare code, or the callback URL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "oidc/error.h"

#define LK_ANSWER_MAX 8192

/*
 * A bare code is taken as it is (printable ASCII, no spaces). A URL is parsed
 * with curl's URL API: its state must equal expected_state (compared in
 * constant time); error= becomes LK_ERR_ACCESS_DENIED_BY_USER with the
 * provider's error and error_description; code= is the result. Leading and
 * trailing white space is ignored. Empty, oversized, non-UTF-8 answers are
 * LK_ERR_INVALID_ARGUMENT, naming what was wrong but never quoting the answer.
 * RFC 9207: a URL's iss must equal expected_iss (NULL: not checked), and with
 * iss_required a URL without iss is refused; a bare code needs none.
 */
int lk_answer_parse(const char *answer, const char *expected_state, const char *expected_iss,
                    bool iss_required, char **ret_code, struct lk_error *e);

/*
 * The decoded state of a callback's query (the text after '?', without it), by the same rules
 * as an answer's (a parameter given twice is refused): the callback listener finds the login
 * with it before the whole answer is checked by lk_answer_parse(). LK_ERR_INVALID_ARGUMENT when
 * the query is oversized, carries no state or cannot be read. *ret_state is a secret.
 */
int lk_answer_query_state(const char *query, size_t len, char **ret_state, struct lk_error *e);
