/* SPDX-License-Identifier: MIT */
/*
 * lk_token_response_parse() on anything. The first byte picks the HTTP status
 * (byte % 6: 200, 200, 400, 401, 503, 404) and the content type
 * ((byte / 6) % 4: "application/json;charset=UTF-8", "application/json",
 * "text/html", none); the rest is the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oidc/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const long statuses[] = {200, 200, 400, 401, 503, 404};
        static const char *const types[] = {"application/json;charset=UTF-8", "application/json",
                                            "text/html", NULL};
        struct lk_tokens t = {0};
        struct lk_error e = {0};
        int r;

        if (size < 1)
                return 0;
        r = lk_token_response_parse(statuses[data[0] % 6], types[(data[0] / 6) % 4],
                                    (const char *)data + 1, size - 1, 1700000000, &t, &e);
        if (r == 0) {
                /* What a success promises. */
                if (!t.access_token || !*t.access_token || !t.token_type ||
                    strcmp(t.token_type, "Bearer") != 0 ||
                    (t.expires_at != 0 && t.expires_at <= 1700000000))
                        __builtin_trap();
                lk_tokens_clear(&t);
        } else if (e.code != -r || !e.message[0] || t.access_token) {
                __builtin_trap();
        }
        return 0;
}
