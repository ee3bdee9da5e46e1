/* SPDX-License-Identifier: MIT */
#include "oidc/error.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

/* Linux's MAX_ERRNO: no errno, nor any -errno a system call returns, reaches our codes. */
static_assert(LK_ERR_FIRST > 4095, "LK_ERR_* must not overlap errno values");

/* A message cut to fit ends on a whole character: D-Bus carries only valid UTF-8. */
static void trim_cut_character(char *s)
{
        size_t len = strlen(s), start = len;
        uint32_t cp;

        while (start > 0 && len - start < 4 && ((unsigned char)s[start - 1] & 0xc0) == 0x80)
                start--;
        if (start > 0 && (unsigned char)s[start - 1] >= 0xc0)
                start--;
        if (start < len && lk_utf8_decode(s + start, len - start, &cp) != len - start)
                s[start] = '\0';
}

static int _printf_(4, 0) error_setv(struct lk_error *e, int code, int detail, const char *fmt, va_list ap)
{
        /* An errno here skipped lk_error_from_errno(); a 0 is a failure without a cause. */
        assert(lk_err_valid(code));
        if (code < 0)
                code = -code;
        if (e && e->code == 0) {
                e->code = code;
                e->detail = detail;
                if (vsnprintf(e->message, sizeof(e->message), fmt, ap) >= (int)sizeof(e->message))
                        trim_cut_character(e->message);
        }
        return -code;
}

int lk_error_set(struct lk_error *e, int code, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_setv(e, code, 0, fmt, ap);
        va_end(ap);
        return r;
}

int lk_error_setv(struct lk_error *e, int code, const char *fmt, va_list ap)
{
        return error_setv(e, code, 0, fmt, ap);
}

int lk_error_set_detail(struct lk_error *e, int code, int detail, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_setv(e, code, detail, fmt, ap);
        va_end(ap);
        return r;
}

int lk_error_from_errno(struct lk_error *e, int err, const char *fmt, ...)
{
        char what[LK_ERROR_MESSAGE_MAX];
        va_list ap;

        if (err < 0)
                err = -err;
        /* An LK_ERR_* (or 0) here is a caller that mixed the two kinds of codes up. */
        assert(err > 0 && err < LK_ERR_FIRST);
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return lk_error_set(e, err == ENOMEM ? LK_ERR_NOMEM : LK_ERR_IO, "%s: %s", what,
                            strerror(err));
}

void lk_error_clear(struct lk_error *e)
{
        if (e)
                *e = (struct lk_error){0};
}

const char *lk_err_name(int code)
{
        static const char *const names[_LK_ERR_MAX - LK_ERR_FIRST] = {
                [LK_ERR_NOMEM - LK_ERR_FIRST] = "NoMemory",
                [LK_ERR_IO - LK_ERR_FIRST] = "IOError",
                [LK_ERR_CONFIG - LK_ERR_FIRST] = "ConfigError",
                [LK_ERR_INVALID_ARGUMENT - LK_ERR_FIRST] = "InvalidArgument",
                [LK_ERR_ACCESS_DENIED - LK_ERR_FIRST] = "AccessDenied",
                [LK_ERR_NOT_FOUND - LK_ERR_FIRST] = "NotFound",
                [LK_ERR_LOGIN_EXPIRED - LK_ERR_FIRST] = "LoginExpired",
                [LK_ERR_INVALID_GRANT - LK_ERR_FIRST] = "InvalidGrant",
                [LK_ERR_INVALID_ID_TOKEN - LK_ERR_FIRST] = "InvalidIdToken",
                [LK_ERR_USER_MISMATCH - LK_ERR_FIRST] = "UserMismatch",
                [LK_ERR_NOT_ALLOWED - LK_ERR_FIRST] = "NotAllowed",
                [LK_ERR_PROVIDER_UNAVAILABLE - LK_ERR_FIRST] = "ProviderUnavailable",
                [LK_ERR_PROVIDER_RESPONSE - LK_ERR_FIRST] = "ProviderResponse",
                [LK_ERR_TOKEN_EXPIRED - LK_ERR_FIRST] = "TokenExpired",
                [LK_ERR_TOO_MANY_REQUESTS - LK_ERR_FIRST] = "TooManyRequests",
                [LK_ERR_ACCESS_DENIED_BY_USER - LK_ERR_FIRST] = "LoginRefused",
                [LK_ERR_CLIENT_REFUSED - LK_ERR_FIRST] = "ClientRefused",
                [LK_ERR_ACCOUNT_DISABLED - LK_ERR_FIRST] = "AccountDisabled",
        };

        assert(lk_err_valid(code));
        if (!lk_err_valid(code)) /* built with NDEBUG: still no read outside names */
                return "Failed";
        if (code < 0)
                code = -code;
        return names[code - LK_ERR_FIRST];
}
