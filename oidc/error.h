/* SPDX-License-Identifier: MIT */
/*
 * Errors inside latchkey: functions return 0 on success or a negative LK_ERR_*
 * code, and describe the failure for a person in a struct lk_error. The
 * message never holds a secret (token, code, client secret, verifier).
 * The daemon translates the code once, at the D-Bus edge (broker/dbus_errors.c),
 * and the PAM module translates the D-Bus names once, to PAM codes.
 *
 * The codes start above every errno (the kernel's go up to 4095, MAX_ERRNO), so a
 * -errno that slips into LK_ERR space cannot pass for one of ours: a system call's
 * errno becomes an LK_ERR_* in lk_error_from_errno(), where the call failed.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include "base/util.h"

#define LK_ERR_FIRST 4096

enum lk_err {
        LK_ERR_NOMEM = LK_ERR_FIRST,
        LK_ERR_IO,                   /* a local file or system call failed */
        LK_ERR_CONFIG,               /* the configuration is wrong */
        LK_ERR_INVALID_ARGUMENT,     /* the caller (or the person) sent something unusable */
        LK_ERR_ACCESS_DENIED,
        LK_ERR_NOT_FOUND,
        LK_ERR_LOGIN_EXPIRED,
        LK_ERR_INVALID_GRANT,        /* the provider refused the code or refresh token */
        LK_ERR_INVALID_ID_TOKEN,     /* detail holds an enum lk_idtoken_check */
        LK_ERR_USER_MISMATCH,
        LK_ERR_NOT_ALLOWED,
        LK_ERR_PROVIDER_UNAVAILABLE, /* network, TLS, timeout, 5xx */
        LK_ERR_PROVIDER_RESPONSE,    /* the provider answered, but with something we cannot use */
        LK_ERR_TOKEN_EXPIRED,
        LK_ERR_TOO_MANY_REQUESTS,
        LK_ERR_ACCESS_DENIED_BY_USER, /* error=access_denied (or other error=) on the callback */
        LK_ERR_CLIENT_REFUSED,       /* the provider refused latchkey's own client credentials */
        LK_ERR_ACCOUNT_DISABLED,     /* the provider refused the account's refresh: no offline PIN */
        _LK_ERR_MAX,
};

/* Whether code (positive or negative) is one of enum lk_err. */
static inline bool lk_err_valid(int code)
{
        if (code < 0)
                code = -code;
        return code >= LK_ERR_FIRST && code < _LK_ERR_MAX;
}

#define LK_ERROR_MESSAGE_MAX 512

struct lk_error {
        int code;      /* positive enum lk_err, 0 when unset */
        int detail;    /* code-specific, e.g. which id_token check failed */
        char message[LK_ERROR_MESSAGE_MAX];
        /* For LK_ERR_INVALID_GRANT and friends: the provider's own words. */
        char provider_error[64];
        char provider_description[256];
};

/*
 * Records the failure in e (which may be NULL) and returns -code, so the
 * decision point reads: return lk_error_set(e, LK_ERR_CONFIG, "...", ...);
 * A later call does not overwrite an earlier one unless lk_error_clear() ran.
 * code (positive or negative) must be an LK_ERR_*: anything else, an errno above
 * all, is a programming error and aborts.
 */
int lk_error_set(struct lk_error *e, int code, const char *fmt, ...) _printf_(3, 4);
int lk_error_set_detail(struct lk_error *e, int code, int detail, const char *fmt, ...) _printf_(4, 5);
int lk_error_setv(struct lk_error *e, int code, const char *fmt, va_list ap) _printf_(3, 0);

/*
 * The one boundary from errno to LK_ERR: err is the errno of the failed call
 * (negative, as a helper returns it, or errno itself); ENOMEM becomes
 * LK_ERR_NOMEM, anything else LK_ERR_IO. The message is fmt's text, ": " and the
 * errno's (strerror), e.g. "Cannot open /etc/latchkey.conf: Permission denied".
 * Returns the negative LK_ERR_*, as lk_error_set() does.
 */
int lk_error_from_errno(struct lk_error *e, int err, const char *fmt, ...) _printf_(3, 4);
void lk_error_clear(struct lk_error *e);

/*
 * A stable name for the code (positive or negative LK_ERR_*, anything else aborts), e.g.
 * "InvalidIdToken"; used for logs and the D-Bus error table.
 */
const char *lk_err_name(int code);
