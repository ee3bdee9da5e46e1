/* SPDX-License-Identifier: MIT */
/*
 * The callback listener's parsers on anything. The first byte chooses: even, the rest (up to
 * a NUL) is a request target for lk_callback_request_state() with the path "/callback"; odd,
 * it is a [callback] listen value for lk_listen_address_parse().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/callback_request.h"
#include "oidc/listen_address.h"
#include "oidc/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void target(const char *t)
{
        struct lk_error e = {0};
        const char *query = NULL;
        size_t len = 0;
        char *state = NULL;
        int r;

        r = lk_callback_request_state(t, "/callback", &query, &len, &state, &e);
        if (r == 0) {
                /* The query lies inside the target, after "/callback?"; the state is not empty. */
                if (strncmp(t, "/callback?", 10) != 0 || query != t + 10 ||
                    len > strlen(query) || !state || !state[0])
                        __builtin_trap();
                lk_secret_free(state);
        } else if (e.code != -r || !e.message[0] || state) {
                __builtin_trap();
        }
}

static void listen_value(const char *v)
{
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char why[160] = "";
        int r;

        r = lk_listen_address_parse(v, &ss, &len, why, sizeof(why));
        if (r == 0) {
                if ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6) || len == 0)
                        __builtin_trap();
        } else if (r != -LK_ERR_CONFIG || !why[0]) {
                __builtin_trap();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text;

        if (size < 1)
                return 0;
        text = malloc(size);
        if (!text)
                return 0;
        memcpy(text, data + 1, size - 1);
        text[size - 1] = 0;
        if (data[0] & 1)
                listen_value(text);
        else
                target(text);
        free(text);
        return 0;
}
