/* SPDX-License-Identifier: MIT */
/*
 * The [accounts] uid range against the host (latchkeyctl check-config, issue 20): it must not
 * meet login.defs' UID_MIN..UID_MAX (useradd would hand out the same uids), nor hold a local
 * user's uid or a local group's gid (read from the files themselves, not through NSS, whose
 * latchkey module answers for the range).
 */
#pragma once

#include <stddef.h>

#include "oidc/config.h"

/* One problem found: a line for a person. */
typedef void (*lk_accounts_problem_fn)(void *userdata, const char *message);

/* Calls problem for each; returns how many. */
unsigned lk_accounts_check_host(const struct lk_config *c, const char *login_defs,
                                const char *passwd, const char *group,
                                lk_accounts_problem_fn problem, void *userdata);
