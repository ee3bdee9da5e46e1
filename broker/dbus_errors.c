/* SPDX-License-Identifier: MIT */
#include "broker/dbus_errors.h"

#include <dbus/dbus.h>
#include <stdio.h>
#include <string.h>

static const char *const error_names[_LK_ERR_MAX - LK_ERR_FIRST] = {
    [LK_ERR_NOMEM - LK_ERR_FIRST] = DBUS_ERROR_NO_MEMORY,
    [LK_ERR_IO - LK_ERR_FIRST] = DBUS_ERROR_FAILED,
    [LK_ERR_CONFIG - LK_ERR_FIRST] = DBUS_ERROR_FAILED,
    [LK_ERR_INVALID_ARGUMENT - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "InvalidArgument",
    [LK_ERR_ACCESS_DENIED - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "AccessDenied",
    [LK_ERR_NOT_FOUND - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "NotFound",
    [LK_ERR_LOGIN_EXPIRED - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "LoginExpired",
    [LK_ERR_INVALID_GRANT - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "InvalidGrant",
    [LK_ERR_INVALID_ID_TOKEN - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "InvalidIdToken",
    [LK_ERR_USER_MISMATCH - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "UserMismatch",
    [LK_ERR_NOT_ALLOWED - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "NotAllowed",
    [LK_ERR_PROVIDER_UNAVAILABLE - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "ProviderUnavailable",
    /* The provider answered with something unusable: to the caller, it is unavailable. */
    [LK_ERR_PROVIDER_RESPONSE - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "ProviderUnavailable",
    [LK_ERR_TOKEN_EXPIRED - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "TokenExpired",
    [LK_ERR_TOO_MANY_REQUESTS - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "TooManyRequests",
    /* error= on the callback: the provider (or the person) refused the grant. */
    [LK_ERR_ACCESS_DENIED_BY_USER - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "InvalidGrant",
    /*
     * invalid_client / unauthorized_client: the broker's own registration is refused (a
     * rotated secret). Nothing the person can do fixes it and every login fails alike, so
     * it is "unavailable": PAM stacks fall back to passwords while the admin fixes it.
     */
    [LK_ERR_CLIENT_REFUSED - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "ProviderUnavailable",
    /* The provider refused the account's refresh: no offline sign-in until an online one. */
    [LK_ERR_ACCOUNT_DISABLED - LK_ERR_FIRST] = LK_DBUS_ERROR_PREFIX "AccountDisabled",
};

const char *lk_dbus_error_name(int r)
{
        if (r < 0)
                r = -r;
        if (!lk_err_valid(r) || !error_names[r - LK_ERR_FIRST])
                return DBUS_ERROR_FAILED;
        return error_names[r - LK_ERR_FIRST];
}

void lk_dbus_error_message(int r, const struct lk_error *e, char *buf, size_t size)
{
        const char *msg = e && e->code ? e->message : "";

        if (isempty(msg))
                msg = lk_err_name(r);
        if (e && e->provider_error[0] && !strstr(msg, e->provider_error)) {
                if (e->provider_description[0])
                        snprintf(buf, size, "%s (provider said: %s: %s)", msg, e->provider_error,
                                 e->provider_description);
                else
                        snprintf(buf, size, "%s (provider said: %s)", msg, e->provider_error);
        } else
                snprintf(buf, size, "%s", msg);
}
