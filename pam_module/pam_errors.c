/* SPDX-License-Identifier: MIT */
#include "pam_module/pam_errors.h"

#include <string.h>
#include <security/_pam_types.h>

#include "base/util.h"

#define BUS "org.freedesktop.DBus.Error."

/*
 * Order matters only for the prefix rows (ending in '.'), which come after
 * every exact name under them. The last row catches everything else.
 *
 * Unknown users: the module asks getpwnam() itself before BeginLogin
 * (LKP_ERROR_USER_UNKNOWN). The broker checks again (SPEC §4); a BeginLogin
 * refused with NotFound or InvalidArgument (a name it cannot use) means the
 * same to PAM, whichever of the two the broker picks. Later in the flow those
 * names mean a lost login or an unusable answer instead.
 *
 * TooManyRequests is PAM_AUTH_ERR, not PAM_AUTHINFO_UNAVAIL: a flood of
 * pending logins must not switch a stack over to its fallback.
 */
static const struct lkp_error_row table[] = {
        { LK_BUS_ERROR_ACCESS_DENIED, PAM_AUTH_ERR, 0, false, true,
          "The sign-in was refused." },
        { LK_BUS_ERROR_INVALID_ARGUMENT, PAM_AUTH_ERR, PAM_USER_UNKNOWN, true, true,
          "The sign-in service could not use that answer." },
        { LK_BUS_ERROR_NOT_FOUND, PAM_AUTH_ERR, PAM_USER_UNKNOWN, false, true,
          "This sign-in is no longer known; please start again." },
        { LK_BUS_ERROR_LOGIN_EXPIRED, PAM_AUTH_ERR, 0, false, true,
          "The sign-in took too long; please start again." },
        { LK_BUS_ERROR_INVALID_GRANT, PAM_AUTH_ERR, 0, true, true,
          "The identity provider refused the code." },
        { LK_BUS_ERROR_INVALID_ID_TOKEN, PAM_AUTH_ERR, 0, false, true,
          "The identity provider's answer failed a security check." },
        { LK_BUS_ERROR_USER_MISMATCH, PAM_AUTH_ERR, 0, false, true,
          "You signed in at the identity provider as a different user." },
        { LK_BUS_ERROR_NOT_ALLOWED, PAM_PERM_DENIED, 0, false, true,
          "This account may not sign in here." },
        { LK_BUS_ERROR_PROVIDER_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, 0, false, true,
          "The identity provider cannot be reached." },
        { LK_BUS_ERROR_TOKEN_EXPIRED, PAM_AUTH_ERR, 0, false, true,
          "The sign-in has expired; please sign in again." },
        { LK_BUS_ERROR_TOO_MANY_REQUESTS, PAM_AUTH_ERR, 0, false, true,
          "Too many sign-ins are in progress; please try again later." },
        { LK_BUS_ERROR_ACCOUNT_DISABLED, PAM_PERM_DENIED, 0, false, true,
          "Account disabled at the provider." },
        { LK_BUS_ERROR_PREFIX, PAM_AUTH_ERR, 0, false, true,
          "The sign-in service refused the sign-in." },

        { LKP_ERROR_USER_UNKNOWN, PAM_USER_UNKNOWN, 0, false, false,
          "Single sign-on is not available for this account." },
        { LKP_ERROR_BAD_ANSWER, PAM_AUTH_ERR, 0, true, true,
          "That is not a code or an address from the sign-in page." },
        { LKP_ERROR_BAD_REPLY, PAM_AUTHINFO_UNAVAIL, 0, false, true,
          "The sign-in service sent an answer this system cannot use." },

        { BUS "NoMemory", PAM_BUF_ERR, 0, false, false,
          "Out of memory." },
        { BUS "ServiceUnknown", PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The sign-in service is not installed or not running." },
        { BUS "NameHasNoOwner", PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The sign-in service is not running." },
        { BUS "NoReply", PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The sign-in service did not answer in time." },
        { BUS "Timeout", PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The sign-in service did not answer in time." },
        { BUS "TimedOut", PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The sign-in service did not answer in time." },
        { BUS "AccessDenied", PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The system bus did not let this program reach the sign-in service." },
        { BUS, PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The sign-in service cannot be reached." },

        /* Anything else (a broker of another version, a local failure): unavailable. */
        { "", PAM_AUTHINFO_UNAVAIL, 0, false, false,
          "The sign-in service is not available." },
};

static bool row_matches(const struct lkp_error_row *row, const char *name)
{
        size_t n = strlen(row->name);

        if (n == 0)
                return true;
        if (row->name[n - 1] == '.')
                return strncmp(name, row->name, n) == 0;
        return streq(name, row->name);
}

const struct lkp_error_row *lkp_error_lookup(const char *name)
{
        if (!name)
                name = "";
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (row_matches(&table[i], name))
                        return &table[i];
        return &table[ELEMENTSOF(table) - 1]; /* not reached: the last row matches all */
}

int lkp_error_pam(const struct lkp_error_row *row, enum lkp_call call, const struct options *o)
{
        int pam = row->pam;

        if (call == LKP_CALL_BEGIN && row->pam_at_begin != 0)
                pam = row->pam_at_begin;
        if (pam == PAM_USER_UNKNOWN && o && o->ignore_unknown_user)
                pam = PAM_IGNORE;
        return pam;
}
