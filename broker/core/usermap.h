/* SPDX-License-Identifier: MIT */
/* From verified id_token claims to a local user name ([users] in SPEC §3). */
#pragma once

#include <jansson.h>

#include "config.h"
#include "error.h"

/*
 * Takes username_claim from claims, removes strip_suffix where it ends with
 * it, and checks allowed_users and allowed_groups (groups_claim: an array of
 * strings or one string); where both are set, both must pass (as sshd's
 * AllowUsers and AllowGroups). Returns 0 and the local name, -LK_ERR_NOT_ALLOWED
 * when the rules refuse it, -LK_ERR_INVALID_ID_TOKEN when the claim is absent
 * or not a usable user name.
 */
int lk_usermap(const struct lk_config *c, const json_t *claims, char **ret_user, struct lk_error *e);
