/* SPDX-License-Identifier: MIT */
/*
 * lk_discovery_parse() and lk_discovery_url() on anything. The first byte:
 * 0 parses the rest as a discovery document for issuer
 * https://tenant.example.com/api/v1/oauth2; 1 does the same with a token
 * endpoint set by hand; 2 takes the rest (up to a NUL) as an issuer for
 * lk_discovery_url().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_config c = {
            .issuer = "https://tenant.example.com/api/v1/oauth2",
            .discovery = true,
        };
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};
        int r;

        if (size < 1)
                return 0;

        if (data[0] % 3 == 2) {
                char *issuer = malloc(size), *url = NULL;

                if (!issuer)
                        return 0;
                memcpy(issuer, data + 1, size - 1);
                issuer[size - 1] = 0;
                r = lk_discovery_url(issuer, &url, &e);
                if (r == 0) {
                        if (!url || !strstr(url, "/.well-known/openid-configuration"))
                                __builtin_trap();
                        free(url);
                } else if (url || e.code != -r) {
                        __builtin_trap();
                }
                free(issuer);
                return 0;
        }

        if (data[0] % 3 == 1)
                c.token_endpoint = "https://proxy.example.com/token";
        r = lk_discovery_parse(&c, (const char *)data + 1, size - 1, &ep, &e);
        if (r == 0) {
                if (!ep.authorization_endpoint || !ep.token_endpoint || !ep.jwks_uri)
                        __builtin_trap();
                if (c.token_endpoint && strcmp(ep.token_endpoint, c.token_endpoint) != 0)
                        __builtin_trap();
                lk_endpoints_clear(&ep);
        } else if (e.code != -r || ep.token_endpoint) {
                __builtin_trap();
        }
        return 0;
}
