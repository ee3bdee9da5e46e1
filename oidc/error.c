/* SPDX-License-Identifier: MIT */
#include "oidc/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

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

int lk_error_set_detail(struct lk_error *e, int code, int detail, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_setv(e, code, detail, fmt, ap);
        va_end(ap);
        return r;
}

void lk_error_clear(struct lk_error *e)
{
        if (e)
                *e = (struct lk_error){0};
}

const char *lk_err_name(int code)
{
        static const char *const names[_LK_ERR_MAX] = {
                [LK_ERR_NOMEM] = "NoMemory",
                [LK_ERR_IO] = "IOError",
                [LK_ERR_CONFIG] = "ConfigError",
                [LK_ERR_INVALID_ARGUMENT] = "InvalidArgument",
                [LK_ERR_ACCESS_DENIED] = "AccessDenied",
                [LK_ERR_NOT_FOUND] = "NotFound",
                [LK_ERR_LOGIN_EXPIRED] = "LoginExpired",
                [LK_ERR_INVALID_GRANT] = "InvalidGrant",
                [LK_ERR_INVALID_ID_TOKEN] = "InvalidIdToken",
                [LK_ERR_USER_MISMATCH] = "UserMismatch",
                [LK_ERR_NOT_ALLOWED] = "NotAllowed",
                [LK_ERR_PROVIDER_UNAVAILABLE] = "ProviderUnavailable",
                [LK_ERR_PROVIDER_RESPONSE] = "ProviderResponse",
                [LK_ERR_TOKEN_EXPIRED] = "TokenExpired",
                [LK_ERR_TOO_MANY_REQUESTS] = "TooManyRequests",
                [LK_ERR_ACCESS_DENIED_BY_USER] = "LoginRefused",
                [LK_ERR_CLIENT_REFUSED] = "ClientRefused",
        };

        if (code < 0)
                code = -code;
        if (code <= 0 || code >= _LK_ERR_MAX || !names[code])
                return "Failed";
        return names[code];
}
