/* SPDX-License-Identifier: MIT */
/*
 * The account step for provider accounts (issue 20), whatever authenticated the person (SSO,
 * an ssh key): the accounts cache (base/accounts_file.h) and [accounts] of latchkey.conf say
 * whether the provider still stands behind the account. Local accounts are not ours.
 */
#pragma once

#include <security/pam_modules.h>

/*
 * PAM_IGNORE for a user that is not a provider account (a local one, or accounts are off);
 * PAM_SUCCESS for a provider account in good standing; PAM_PERM_DENIED when the provider
 * refused its last refresh (disabled, deleted), PAM_ACCT_EXPIRED when it has not signed in
 * for [accounts] max_offline_days, PAM_USER_UNKNOWN for a name that only has a provisional
 * answer (it never completed a login). Each refusal is logged and told to the person.
 * config: the latchkey.conf to read ([accounts]).
 */
int lkp_account_check(pam_handle_t *pamh, const char *config, const char *user);
