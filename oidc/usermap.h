/* SPDX-License-Identifier: MIT */
/* From verified id_token claims to a local user name ([users] in SPEC §3). */
#pragma once

#include <jansson.h>
#include <sys/types.h>

#include "oidc/config.h"
#include "oidc/error.h"

/*
 * Takes username_claim from claims, removes strip_suffix where it ends with
 * it, and checks allowed_users and allowed_groups (groups_claim: an array of
 * strings or one string); where both are set, both must pass (as sshd's
 * AllowUsers and AllowGroups). Returns 0 and the local name, -LK_ERR_NOT_ALLOWED
 * when the rules refuse it, -LK_ERR_INVALID_ID_TOKEN when the claim is absent
 * or not a usable user name.
 */
int lk_usermap(const struct lk_config *c, const json_t *claims, char **ret_user, struct lk_error *e);

#define LK_LOGIN_DEFS_PATH "/etc/login.defs"
#define LK_UID_MIN_DEFAULT 1000 /* shadow's default UID_MIN */

/*
 * UID_MIN from a login.defs file, read as shadow's getdef() does: "NAME VALUE"
 * lines, '#' comments, a value optionally in double quotes, decimal, 0x hex or
 * 0 octal, the last line winning. LK_UID_MIN_DEFAULT when the file or the key is
 * missing. A value that is not a uid is -LK_ERR_CONFIG, naming file and line
 * (shadow then falls back to its default, and so should the caller).
 */
int lk_login_defs_uid_min(const char *path, uid_t *ret, struct lk_error *e);
/* The same for any uid key of login.defs (UID_MAX: LK_UID_MAX_DEFAULT), def when unset. */
#define LK_UID_MAX_DEFAULT 60000 /* shadow's default UID_MAX */
int lk_login_defs_uid(const char *path, const char *name, uid_t def, uid_t *ret,
                      struct lk_error *e);

/*
 * Root and system accounts (uid 0, or below uid_min) are refused with
 * -LK_ERR_NOT_ALLOWED unless [users] allow_system_users names them: a
 * provider account must never become root, or the owner of a service's files,
 * by default.
 */
int lk_usermap_check_account(const struct lk_config *c, uid_t uid_min, const char *user,
                             uid_t uid, struct lk_error *e);
