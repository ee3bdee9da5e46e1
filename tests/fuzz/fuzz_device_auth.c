/* SPDX-License-Identifier: MIT */
/*
 * lk_device_auth_parse() (RFC 8628 §3.2) on anything. The first byte picks the HTTP status
 * (byte % 4: 200, 200, 400, 503) and the content type ((byte / 4) % 3: "application/json",
 * "application/json; charset=utf-8", "text/html"); the rest is the body. What a success
 * promises is checked, and lk_device_outcome() runs on every error.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oidc/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t max)
{
        size_t n;

        if (!s)
                __builtin_trap();
        n = strlen(s);
        if (n == 0 || n > max)
                __builtin_trap();
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const long statuses[] = {200, 200, 400, 503};
        static const char *const types[] = {"application/json", "application/json; charset=utf-8",
                                            "text/html"};
        struct lk_device_auth d = {0};
        struct lk_error e = {0};
        int r;

        if (size < 1)
                return 0;
        r = lk_device_auth_parse(statuses[data[0] % 4], types[(data[0] / 4) % 3],
                                 (const char *)data + 1, size - 1, &d, &e);
        if (r == 0) {
                check_text(d.device_code, LK_DEVICE_CODE_MAX);
                check_text(d.user_code, LK_DEVICE_USER_CODE_MAX);
                check_text(d.verification_uri, LK_DEVICE_URI_MAX);
                if (d.verification_uri_complete)
                        check_text(d.verification_uri_complete, LK_DEVICE_URI_MAX);
                if (d.expires_in < 1 || d.expires_in > LK_DEVICE_EXPIRES_MAX ||
                    d.interval < LK_DEVICE_INTERVAL_MIN || d.interval > LK_DEVICE_INTERVAL_MAX)
                        __builtin_trap();
                lk_device_auth_clear(&d);
        } else {
                if (e.code != -r || !e.message[0] || d.device_code)
                        __builtin_trap();
                (void)lk_device_outcome(&e);
        }
        return 0;
}
